import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { redactUrl } from '../../src/config.js';
import { type FallbackDatabase, startFallbackDatabase } from '../../src/dev/fallback-database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

let fallback: FallbackDatabase | undefined;

/** Picks the database for the whole run: an explicit URL from the environment, else a throwaway server. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Tests that start real processes (workers, the CLI) run the built package.
  execFileSync('node_modules/.bin/tsc', ['-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  cpSync('src/dashboard/public', 'dist/dashboard/public', { recursive: true }); // as npm run build does
  const fromEnv = (['PGTQ_TEST_DATABASE_URL', 'DATABASE_URL'] as const).find((name) => process.env[name]);
  let url: string;
  if (fromEnv) {
    url = process.env[fromEnv] ?? '';
    // An explicit URL that does not answer is a setup mistake: fail loudly instead of testing something else.
    await checkReachable(url).catch((error: unknown) => {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`${fromEnv} is set but ${redactUrl(url)} does not answer: ${reason}`);
    });
    console.error(`[pgtq tests] database: ${fromEnv} (${redactUrl(url)})`);
  } else {
    fallback = await startFallbackDatabase();
    url = fallback.url;
    console.error(`[pgtq tests] database: ${fallback.kind} fallback (${redactUrl(url)})`);
  }
  project.provide('databaseUrl', url);

  return async () => {
    await fallback?.stop();
    fallback = undefined;
  };
}

async function checkReachable(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  // Keep a late socket error from becoming an unhandled 'error' event.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => {});
  }
}

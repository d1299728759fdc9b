import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/** The database chosen by the global setup for this run. */
export function databaseUrl(): string {
  return inject('databaseUrl');
}

/** A fresh schema name so test files can share one database without seeing each other's tables. */
export function uniqueSchemaName(prefix = 'pgtq_test'): string {
  const suffix = randomBytes(6).toString('hex');
  return `${prefix.toLowerCase().slice(0, 40 - suffix.length - 1)}_${suffix}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl() });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${client.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * Polls `probe` until it returns a truthy value and resolves with it; use instead of fixed sleeps.
 * An error thrown by `probe` rejects at once: a broken probe should not look like a slow one.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  { timeoutMs = 10_000, intervalMs = 10 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) {
      throw new Error(`waitFor: condition not met within ${timeoutMs} ms (last value: ${String(value)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

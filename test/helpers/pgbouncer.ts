import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll } from 'vitest';
import { databaseUrl, waitFor } from './database.js';

/** Where Debian's package puts it, else the PATH. */
function findPgBouncer(): string {
  for (const candidate of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    if (existsSync(candidate)) return candidate;
  }
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      'these tests need a pgbouncer binary, and none was found (Debian: apt-get install -y pgbouncer; .ci/run installs it)',
    );
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

export interface PgBouncer {
  /** The test database through PgBouncer, in transaction mode. */
  readonly url: string;
  /** The same, through a pool of one server connection. */
  readonly singleServerUrl: string;
  readonly version: string;
}

/**
 * A throwaway PgBouncer for the calling test file, in transaction mode, on a free
 * port, in front of the test database; stopped and its folder removed after the file.
 * `auth_type = any` logs in to the server as the database URL's user, so it works
 * with a trust (or password-in-URL) server without a userlist.
 */
export async function usePgBouncer(): Promise<PgBouncer> {
  const binary = findPgBouncer();
  const server = new URL(databaseUrl());
  const folder = await mkdtemp(join(tmpdir(), 'pgtq-pgbouncer-'));
  // As root, PgBouncer runs as another user (-u), who must reach its folder.
  await chmod(folder, 0o777);
  const port = await freePort();
  const target = [
    `host=${server.hostname || '127.0.0.1'}`,
    `port=${server.port || '5432'}`,
    `dbname=${decodeURIComponent(server.pathname.slice(1)) || 'postgres'}`,
    `user=${decodeURIComponent(server.username) || 'postgres'}`,
    ...(server.password ? [`password=${decodeURIComponent(server.password)}`] : []),
  ].join(' ');
  const config = join(folder, 'pgbouncer.ini');
  const log = join(folder, 'pgbouncer.log');
  await writeFile(
    config,
    [
      '[databases]',
      `bounced = ${target} pool_size=10`,
      `bounced_single = ${target} pool_size=1`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = any',
      'pool_mode = transaction',
      'max_client_conn = 500',
      `logfile = ${log}`,
      `pidfile = ${join(folder, 'pgbouncer.pid')}`,
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  const args = process.getuid?.() === 0 ? ['-u', 'postgres', config] : [config];
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  afterAll(async () => {
    if (!exited) {
      child.kill('SIGTERM');
      await exit;
    }
    await rm(folder, { recursive: true, force: true });
  });
  const url = `postgres://${encodeURIComponent(server.username || 'postgres')}@127.0.0.1:${port}/bounced`;
  const singleServerUrl = url.replace(/\/bounced$/, '/bounced_single');
  await waitFor(
    async () => {
      if (exited) {
        const logged = await readFile(log, 'utf8').catch(() => '');
        throw new Error(`pgbouncer exited at start:\n${output}\n${logged}`);
      }
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => {});
      }
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );
  return { url, singleServerUrl, version };
}

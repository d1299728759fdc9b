import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, described, lines, pgtq, UNREACHABLE } from '../helpers/cli.js';
import { uniqueSchemaName, waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

// `pgtq worker` and `pgtq scheduler` as processes: how they start, fail and stop.
const db = await useTestSchema('pgtq_cli_services');
const handlers = fileURLToPath(new URL('./fixtures/handlers.mjs', import.meta.url));
/** The test database, as a deployment's environment would name it. */
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };

/** A server that accepts connections and never answers: a host lost behind a firewall. */
let blackhole: Server;
let blackholeUrl: string;
const sockets = new Set<Socket>();
beforeAll(async () => {
  blackhole = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  const address = blackhole.address();
  blackholeUrl = `postgres://postgres@127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/x`;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => blackhole.close(resolve));
});

function startCli(args: string[], processEnv: Record<string, string>) {
  return startNode([cli, ...args], processEnv, { clean: true, timeoutMs: 60_000 });
}

describe('an unreachable database at start', () => {
  it.each([['worker', handlers], ['scheduler']])(
    'pgtq %s exits 1 with one line within seconds',
    async (...args) => {
      const started = Date.now();
      const result = await pgtq([...args, '--database-url', UNREACHABLE], env, 15_000);
      expect(result.code, described(result)).toBe(1);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(lines(result.stderr), described(result)).toEqual([
        expect.stringMatching(/^pgtq: cannot connect to the database: .*ECONNREFUSED/),
      ]);
    },
  );

  it.each([['worker', handlers, '--grace-ms', '1000'], ['scheduler']])(
    'pgtq %s stops on SIGTERM while its first connection hangs',
    async (...args) => {
      const before = sockets.size;
      const run = startCli([...args, '--database-url', blackholeUrl], env);
      // Its first connection is open and hanging: the process is starting its services.
      await waitFor(() => sockets.size > before, { timeoutMs: 10_000 });
      const signalledAt = Date.now();
      run.child.kill('SIGTERM');
      const result = await run.finished;
      expect(result.signal, described(result)).toBeNull();
      expect(Date.now() - signalledAt).toBeLessThan(8_000);
      expect(result.stderr).toContain('stopping');
    },
  );
});

describe('an unmigrated schema', () => {
  it.each([['worker', handlers], ['scheduler']])(
    'pgtq %s says once that pgtq migrate is needed, and exits 1',
    async (...args) => {
      const schema = uniqueSchemaName('pgtq_cli_unmigrated');
      const result = await pgtq([...args, '--schema', schema], { DATABASE_URL: db.url }, 15_000);
      expect(result.code, described(result)).toBe(1);
      expect(lines(result.stderr), described(result)).toEqual([
        `pgtq: schema "${schema}" is not migrated (or is older than this version of pgtq): run "pgtq migrate" or q.migrate() first`,
      ]);
    },
  );
});

describe('pgtq worker', () => {
  it('runs a module whose queue pins no connection on --database-url and --schema, and its handlers log through the command', async () => {
    const run = startCli(['worker', handlers, '--database-url', db.url, '--schema', db.schema], {
      DATABASE_URL: UNREACHABLE,
      PGTQ_SCHEMA: 'pgtq_cli_never_used',
    });
    const ref = await db.queue('follows').push('double', [21]);
    await expect(ref.result({ timeoutMs: 10_000 })).resolves.toBe(42);
    await waitFor(() => run.errors().includes('hello from a handler'));
    run.child.kill('SIGTERM');
    const result = await run.finished;
    expect(result.code, described(result)).toBe(0);
    expect(result.stderr).toMatch(/ info hello from a handler n=21\n/);
  });

  it('--json logs JSON lines', async () => {
    const run = startCli(['worker', handlers, '--json'], env);
    const ref = await db.queue('follows').push('double', [1]);
    await expect(ref.result({ timeoutMs: 10_000 })).resolves.toBe(2);
    await waitFor(() => run.errors().includes('succeeded'));
    run.child.kill('SIGTERM');
    const result = await run.finished;
    expect(result.code, described(result)).toBe(0);
    const logged = lines(result.stderr).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(logged.map((entry) => entry.msg)).toEqual(
      expect.arrayContaining([
        'worker started',
        'running',
        'hello from a handler',
        'succeeded',
        'worker stopped',
      ]),
    );
    for (const entry of logged) {
      expect(entry).toMatchObject({ time: expect.any(String), level: expect.any(String) });
    }
    expect(logged.find((entry) => entry.msg === 'succeeded')).toMatchObject({
      queue: 'follows',
      task: 'double',
    });
  });

  it('--with-scheduler runs an overdue task and never warns that no scheduler is running', async () => {
    const q = db.queue('follows');
    const ref = await q.push('double', [5]);
    // Overdue by a minute, as if no scheduler had run: only a scheduler makes it ready.
    await db.rows(
      "UPDATE :schema.tasks SET state = 'scheduled', run_at = now() - interval '1 minute' WHERE id = $1",
      [ref.id],
    );
    const run = startCli(['worker', handlers, '--with-scheduler'], env);
    await expect(ref.result({ timeoutMs: 10_000 })).resolves.toBe(10);
    // The worker looks for a missing scheduler after its first liveness interval (5 s).
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    run.child.kill('SIGTERM');
    const result = await run.finished;
    expect(result.code, described(result)).toBe(0);
    expect(result.stderr).not.toContain('no scheduler is running');
  }, 30_000);

  it('survives pg_terminate_backend of its connections while transactional handlers wait mid-transaction', async () => {
    const appName = `pgtq_victim_${db.schema}`.slice(0, 60);
    const url = new URL(db.url);
    url.searchParams.set('application_name', appName);
    // With a scheduler: the attempts cut short are retried after a back-off.
    const run = startCli(
      ['worker', handlers, '--with-scheduler', '--lease-ms', '2000', '--grace-ms', '2000'],
      {
        DATABASE_URL: url.toString(),
        PGTQ_SCHEMA: db.schema,
      },
    );
    await waitFor(async () => (await db.queue('follows').processes()).some((p) => p.pid === run.child.pid));
    const refs = await db
      .queue('follows')
      .pushMany(Array.from({ length: 20 }, (_, n) => ({ name: 'slow_write', args: [n] })));
    let killed = 0;
    for (let storm = 0; storm < 4; storm++) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const [row] = await db.rows<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
         WHERE application_name = $1 AND datname = current_database()`,
        [appName],
      );
      killed += row?.n ?? 0;
    }
    expect(killed).toBeGreaterThan(0);
    for (const ref of refs) {
      await expect(ref.result({ timeoutMs: 20_000 }), run.errors()).resolves.toBeTypeOf('number');
    }
    expect(run.child.exitCode, run.errors()).toBeNull(); // still running
    run.child.kill('SIGTERM');
    const result = await run.finished;
    expect(result.code, described(result)).toBe(0);
    expect(result.stderr).not.toMatch(/Unhandled|uncaught/i);
  }, 45_000);
});

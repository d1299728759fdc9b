import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  type Connection,
  PgTq,
  Retry,
  TaskNotFoundError,
  type Worker,
} from '../../src/index.js';
import { cli } from '../helpers/cli.js';
import { databaseUrl, dropSchema, uniqueSchemaName, waitFor } from '../helpers/database.js';
import { usePgBouncer } from '../helpers/pgbouncer.js';
import { startNode } from '../helpers/processes.js';
import { gate, useServices } from '../helpers/services.js';

// The worker suite's core cases through a real PgBouncer in transaction mode (Debian's
// 1.18: no prepared statements there, and no LISTEN), once with LISTEN on a direct
// connection and once polling only.
const bouncer = await usePgBouncer();
const services = useServices();
const schema = uniqueSchemaName('pgtq_bouncer');
const direct = new pg.Pool({ connectionString: databaseUrl(), max: 2 });
const queues: PgTq[] = [];

/** A queue whose pool goes through PgBouncer. */
function bounced(name: string, options: Omit<Exclude<Connection, string>, 'connectionString'> = {}) {
  const q = new PgTq(name, { connectionString: bouncer.url, schema, preparedStatements: false, ...options });
  queues.push(q);
  return q;
}

const rows = async <R extends pg.QueryResultRow>(sql: string, values: unknown[] = []) =>
  (await direct.query<R>(sql.replaceAll(':schema', `"${schema}"`), values)).rows;

afterAll(async () => {
  await Promise.all(queues.map((q) => q.close()));
  await direct.end();
  await dropSchema(schema);
});

describe(`through ${bouncer.version} in transaction mode`, () => {
  beforeAll(async () => {
    // Migrating through the pooler: one transaction, a transaction-level lock, no session state.
    const applied = await Promise.all([bounced('migrate-a').migrate(), bounced('migrate-b').migrate()]);
    expect(applied.flat().sort()).toEqual([
      '1763800000000_tasks',
      '1763800000001_schedules',
      '1763800000002_processes',
      '1763800000003_admin',
      '1763800000004_ready_ring',
      '1763800000005_compact_tasks',
      '1763800000006_flow_control',
      '1763800000007_flow_turns',
      '1763800000008_http_tasks',
      '1763800000009_progress',
      '1763800000010_dead_letters',
      '1763800000011_undo',
      '1763800000012_task_dependencies',
      '1763800000013_history_filters',
      '1763800000014_tasks_without_handler',
      '1763800000015_task_traces',
      '1763800000016_flow_claim_statements',
      '1763800000017_flow_claim_gate_and_commit',
    ]);
    expect(await bounced('migrate-c').migrate()).toEqual([]);
    // Nothing the migration set outlived it on PgBouncer's server connections.
    const plain = new pg.Pool({ connectionString: bouncer.url, max: 8 });
    try {
      const paths = await Promise.all(
        Array.from({ length: 8 }, () =>
          plain.query<{ search_path: string }>('SELECT pg_sleep(0.05), current_setting($1) AS search_path', [
            'search_path',
          ]),
        ),
      );
      expect(new Set(paths.map((result) => result.rows[0]?.search_path))).toEqual(
        new Set(['"$user", public']),
      );
    } finally {
      await plain.end();
    }
    await rows('CREATE TABLE :schema.side_effects (task text PRIMARY KEY)');
  });

  it('named prepared statements (the default) fail through it: preparedStatements: false is needed', async () => {
    // Two clients of one pool share PgBouncer's single server connection: the second
    // one's PREPARE of the same name meets the first one's statement there.
    const named = new PgTq('named', { connectionString: bouncer.singleServerUrl, schema, max: 2 });
    const unnamed = new PgTq('named', {
      connectionString: bouncer.singleServerUrl,
      schema,
      max: 2,
      preparedStatements: false,
    });
    queues.push(named, unnamed);
    const outcomes = await Promise.allSettled(Array.from({ length: 4 }, () => named.length()));
    const codes = outcomes.flatMap((outcome) =>
      outcome.status === 'rejected' ? [(outcome.reason as { code?: string }).code] : [],
    );
    expect(codes.length).toBeGreaterThan(0);
    for (const code of codes) expect(['42P05', '26000']).toContain(code); // already exists / does not exist
    await expect(Promise.all(Array.from({ length: 4 }, () => unnamed.length()))).resolves.toEqual([
      0, 0, 0, 0,
    ]);
  });

  describe.each([
    { mode: 'LISTEN on a direct connection', listen: databaseUrl() as string | false },
    { mode: 'polling only', listen: false as const },
  ])('$mode', ({ mode, listen }) => {
    const polling = listen === false;
    const queue = (name: string) => bounced(`${name}-${polling ? 'poll' : 'listen'}`, { listen });
    // With LISTEN, the polls are made too slow to matter, so a prompt start proves NOTIFY
    // arrived; without, the defaults must be prompt enough on their own.
    const workerOptions = polling ? {} : { pollIntervalMs: 60_000 };
    const startWorker = (q: PgTq, options: Parameters<PgTq['worker']>[0] = {}) =>
      services.start(q.worker({ ...workerOptions, ...options }));
    const startScheduler = (q: PgTq) => services.start(q.scheduler(polling ? {} : { maxSleepMs: 60_000 }));
    const finished = (id: string) =>
      rows<{ state: string; result: unknown; error: string | null; attempts: number }>(
        'SELECT state, result, error, attempts FROM :schema.finished_tasks WHERE id = $1',
        [id],
      );

    it(`${mode}: pushes in the caller's transaction: a commit stores the task, a rollback none`, async () => {
      const q = queue('push');
      const add = q.handler(async function add(a: number, b: number) {
        return a + b;
      });
      const client = new pg.Client({ connectionString: bouncer.url });
      await client.connect();
      try {
        await client.query('BEGIN');
        const gone = await add.with({ client }).push(1, 1);
        await client.query('ROLLBACK');
        await client.query('BEGIN');
        const kept = await add.with({ client }).push(2, 3);
        // Not visible outside the transaction before it commits.
        expect(await rows('SELECT id FROM :schema.tasks WHERE id = $1', [kept.id])).toEqual([]);
        await client.query('COMMIT');
        expect(await rows('SELECT id FROM :schema.tasks WHERE id = $1', [gone.id])).toEqual([]);
        await startWorker(q);
        await expect(kept.result({ timeoutMs: 5_000 })).resolves.toBe(5);
        expect(await q.getTask(kept.id)).toMatchObject({ state: 'succeeded', result: 5 });
        await expect(q.getTask(gone.id)).rejects.toBeInstanceOf(TaskNotFoundError);
      } finally {
        await client.end();
      }
    });

    it(`${mode}: a worker claims and completes many tasks, and ref.result() waits for each`, async () => {
      const q = queue('many');
      const double = q.handler(async function double(n: number) {
        return n * 2;
      });
      await startWorker(q, { concurrency: 8 });
      const refs = await double.pushMany(Array.from({ length: 50 }, (_, i) => [i] as [number]));
      const results = await Promise.all(refs.map((ref) => ref.result({ timeoutMs: 8_000 })));
      expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
      const late = await double.push(21);
      await expect(late.result({ timeoutMs: 5_000 })).resolves.toBe(42);
    });

    it(`${mode}: an idle worker starts a pushed task promptly`, async () => {
      const q = queue('prompt');
      let startedAt = 0;
      const ping = q.handler(async function ping() {
        startedAt = Date.now();
      });
      await startWorker(q);
      await waitFor(
        async () => (await rows('SELECT 1 FROM :schema.processes WHERE queue = $1', [q.name])).length,
      );
      const pushedAt = Date.now();
      await ping.push();
      await waitFor(() => startedAt, { timeoutMs: 5_000 });
      // NOTIFY: a few ms; polling only: within the 1 s default poll (±20 %) plus a claim.
      expect(startedAt - pushedAt).toBeLessThan(polling ? 1_500 : 200);
    });

    it(`${mode}: retries with back-off through the scheduler, then succeeds`, async () => {
      const q = queue('retry');
      let calls = 0;
      const flaky = q.handler(
        { name: 'flaky', maxAttempts: 4, backoff: { baseMs: 100, jitter: 0 } },
        async function flaky() {
          calls++;
          if (calls === 1) throw new Error('first failure');
          if (calls === 2) throw new Retry({ delayMs: 200 });
          return calls;
        },
      );
      const retries: number[] = [];
      const worker: Worker = await startWorker(q);
      worker.on('task:retry', (_task, _error, delayMs) => retries.push(delayMs));
      await startScheduler(q);
      const ref = await flaky.push();
      await expect(ref.result({ timeoutMs: 8_000 })).resolves.toBe(3);
      expect(retries).toEqual([100, 200]);
      expect(await finished(ref.id)).toEqual([{ state: 'succeeded', result: 3, error: null, attempts: 3 }]);
    });

    it(`${mode}: a transactional handler's writes commit with its completion, or roll back with its failure`, async () => {
      const q = queue('tx');
      const write = q.handler(
        { name: 'write', transactional: true, maxAttempts: 1 },
        async function write(fail: boolean) {
          await this.tx?.query(`INSERT INTO "${schema}".side_effects VALUES ($1)`, [this.task?.id]);
          if (fail) throw new Error('rolled back');
          return 'committed';
        },
      );
      await startWorker(q);
      const ok = await write.push(false);
      const bad = await write.push(true);
      await expect(ok.result({ timeoutMs: 5_000 })).resolves.toBe('committed');
      await expect(bad.result({ timeoutMs: 5_000 })).rejects.toThrow(/rolled back/);
      const effects = await rows<{ task: string }>(
        'SELECT task FROM :schema.side_effects WHERE task = ANY($1)',
        [[ok.id, bad.id]],
      );
      expect(effects).toEqual([{ task: ok.id }]);
    });

    it(`${mode}: cancels a pending task at once and a running one through its signal`, async () => {
      const q = queue('cancel');
      const started = gate();
      const wait = q.handler({ name: 'wait', maxAttempts: 1 }, async function wait(block: boolean) {
        if (!block) return 'ran';
        started.open();
        await new Promise((_resolve, reject) => {
          this.signal.addEventListener('abort', () => reject(this.signal.reason));
        });
      });
      const pending = await wait.with({ delayMs: 60_000 }).push(false);
      expect(await q.cancel(pending.id, 'not wanted')).toEqual({
        cancelled: [pending.id],
        cancelRequested: [],
      });
      await expect(pending.result({ timeoutMs: 5_000 })).rejects.toThrow(/cancelled/);
      await startWorker(q, { leaseMs: 1_000 });
      const running = await wait.push(true);
      await started.closed;
      expect(await q.cancel(running.id, 'stop it')).toEqual({ cancelled: [], cancelRequested: [running.id] });
      await expect(running.result({ timeoutMs: 5_000 })).rejects.toThrow(/cancelled/);
      expect((await finished(running.id))[0]?.state).toBe('cancelled');
    });

    it(`${mode}: the scheduler promotes a delayed task when it comes due`, async () => {
      const q = queue('delayed');
      const stamp = q.handler(async function stamp() {
        return Date.now();
      });
      await startWorker(q);
      await startScheduler(q);
      // A far one first: the scheduler sleeps towards it until told of the nearer one.
      await stamp.with({ delayMs: 3_600_000 }).push();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const pushedAt = Date.now();
      const ref = await stamp.with({ delayMs: 300 }).push();
      expect((await q.getTask(ref.id)).state).toBe('scheduled');
      const ranAt = await ref.result({ timeoutMs: 8_000 });
      expect(ranAt - pushedAt).toBeGreaterThanOrEqual(300);
      // Woken by NOTIFY with LISTEN; by its 1 s sleep and the 1 s worker poll without.
      expect(ranAt - pushedAt).toBeLessThan(polling ? 3_500 : 1_000);
    });
  });

  it('pgtq worker runs through it with --prepared-statements off and --listen on a direct connection', async () => {
    const run = startNode(
      [
        cli,
        'worker',
        fileURLToPath(new URL('../cli/fixtures/handlers.mjs', import.meta.url)),
        '--database-url',
        bouncer.url,
        '--schema',
        schema,
        '--listen',
        databaseUrl(),
        '--prepared-statements',
        'off',
      ],
      {},
      { clean: true, timeoutMs: 60_000 },
    );
    await waitFor(() => /worker started/.test(run.errors()), { timeoutMs: 15_000 });
    const ref = await bounced('follows').push('double', [21]);
    await expect(ref.result({ timeoutMs: 10_000 })).resolves.toBe(42);
    run.child.kill('SIGTERM');
    expect((await run.finished).code).toBe(0);
  });

  it('$PGTQ_PREPARED_STATEMENTS and $PGTQ_LISTEN are the defaults of a queue that does not set them', async () => {
    process.env.PGTQ_PREPARED_STATEMENTS = 'off';
    process.env.PGTQ_LISTEN = 'off';
    try {
      const q = new PgTq('from-env', { connectionString: bouncer.url, schema });
      queues.push(q);
      const ref = await q.push('a', []);
      // Named statements would fail through this PgBouncer; without LISTEN the pop polls.
      await expect(q.pop()).resolves.toMatchObject({ id: ref.id });
      process.env.PGTQ_PREPARED_STATEMENTS = 'sometimes';
      expect(() => new PgTq('x', { connectionString: bouncer.url })).toThrow(
        'PGTQ_PREPARED_STATEMENTS: expected on or off, got "sometimes"',
      );
    } finally {
      delete process.env.PGTQ_PREPARED_STATEMENTS;
      delete process.env.PGTQ_LISTEN;
    }
  });

  it('preparedStatements and listen are checked like every option, and go with a pool of your own', async () => {
    expect(() => new PgTq('x', { connectionString: bouncer.url, listen: true as unknown as false })).toThrow(
      ConfigError,
    );
    expect(
      () => new PgTq('x', { connectionString: bouncer.url, listen: { connectionstring: 'x' } as never }),
    ).toThrow('connection: listen: expected false, a connection string, or { connectionString }');
    expect(() => new PgTq('x', { connectionString: bouncer.url, preparedStatement: false } as never)).toThrow(
      /did you mean "preparedStatements"/,
    );
    const pool = new pg.Pool({ connectionString: bouncer.url, max: 2 });
    const q = new PgTq('own-pool', { pool, schema, preparedStatements: false, listen: false });
    try {
      await expect(q.length()).resolves.toBe(0);
    } finally {
      await q.close();
      await pool.end();
    }
  });
});

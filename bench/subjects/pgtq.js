/**
 * pgtq as a benchmark subject, run from the built package (dist/). Pending and running tasks live in
 * `<schema>.tasks` and move to `<schema>.finished_tasks` when they end, so "all finished" is an empty
 * tasks table. Also measures what only pgtq needs: a large history, and the bare SQL it runs.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { renderSql } from '../../dist/db/sql-files.js';
import { PgTq } from '../../dist/index.js';
import { SAMPLE_BASE } from '../flow.js';
import { cleanUp, dropSchema, now, quoteIdent, WorkerSubject } from '../harness.js';

export const name = 'pgtq';
const SCHEMA = 'pgtq_bench';
const QUEUE = 'bench';
const TASK = 'noop';

/**
 * @typedef {{ name: string, describe: string }} Profile
 * @type {Profile[]}
 */
export const profiles = [
  {
    name: 'default',
    describe:
      'new PgTq({ max: max(10, c + 2) }), q.worker({ concurrency: c }) and q.scheduler() in the same process',
  },
];

/**
 * @param {import('../run.js').SubjectContext & { profile: Profile }} ctx
 */
export function create(ctx) {
  return new PgTqSubject(ctx);
}

/**
 * The tasks of the flow-control measure (bench/flow.js), by kind: the handler's name and options,
 * and the push options of task i.
 * @type {Record<string, { name: string, options: object, push: (i: number) => object, slow?: boolean }>}
 */
const FLOW = {
  groups: { name: 'noop_groups', options: { groupConcurrency: 5 }, push: (i) => ({ group: `g${i % 1000}` }) },
  rate: { name: 'noop_rate', options: { rateLimit: { limit: 100_000, periodMs: 1000 } }, push: () => ({}) },
  slow: { name: 'slow', options: {}, push: () => ({}), slow: true },
  slowGrouped: {
    name: 'slow_grouped',
    options: {},
    push: (i) => ({ group: i >= SAMPLE_BASE ? `small${i}` : 'big' }),
    slow: true,
  },
};

class PgTqSubject extends WorkerSubject {
  /** @type {PgTq | undefined} */
  #q;
  /** @type {any} */
  #handler;
  /** What pushRange and pushSample push: the plain no-op task, or a kind of FLOW. */
  #pushAs = { name: TASK, push: (/** @type {number} */ _i) => ({}) };
  /** @type {{ start(): Promise<unknown>, stop(): Promise<unknown> }[]} */
  #services = [];

  /** @returns {PgTq} */
  get #queue() {
    if (!this.#q) throw new Error('pgtq: setup() first');
    return this.#q;
  }

  /** What this case runs with, for the results file. */
  settings() {
    const c = this.ctx.concurrency;
    return { schema: SCHEMA, max: Math.max(10, c + 2), worker: { concurrency: c } };
  }

  async setup() {
    await dropSchema(this.ctx.db, SCHEMA);
    this.#q = new PgTq(QUEUE, {
      connectionString: this.ctx.url,
      schema: SCHEMA,
      max: Math.max(10, this.ctx.concurrency + 2),
    });
    await this.#q.migrate();
    const recorder = this.recorder;
    this.#handler = this.#q.handler({ name: TASK }, async function noop(/** @type {number} */ i) {
      recorder.hit(i);
    });
  }

  /** @param {number} i @param {Date} [due] */
  pushOne(i, due) {
    return due ? this.#handler.with({ runAt: due }).push(i) : this.#handler.push(i);
  }

  /** @param {number} start @param {number} end */
  pushRange(start, end) {
    const { name, push } = this.#pushAs;
    const tasks = [];
    for (let i = start; i < end; i++) tasks.push({ name, args: [i], ...push(i) });
    return this.#queue.pushMany(tasks);
  }

  /**
   * Makes pushRange and pushSample push tasks of `kind` (null: the plain no-op task), registering
   * its handler (and storing its limits) on first use; a worker started after this runs it.
   * @param {keyof typeof FLOW | null} kind
   */
  async useFlow(kind) {
    const flow = kind ? FLOW[kind] : undefined;
    if (flow && !this.#queue.handlers.has(flow.name)) {
      const recorder = this.recorder;
      this.#queue.handler({ name: flow.name, ...flow.options }, async (/** @type {number} */ i) => {
        recorder.hit(i);
        if (flow.slow && i < SAMPLE_BASE) await new Promise((resolve) => setTimeout(resolve, 2));
      });
      // Stored before the tasks are pushed, as a worker deployed before its producers stores them:
      // else the worker's first claim puts every task pushed so far in the group '', and is timed.
      const { groupConcurrency = null, rateLimit } = /** @type {any} */ (flow.options);
      await this.ctx.db.query(
        `SELECT ${quoteIdent(SCHEMA)}.set_flow_limits($1, $2, $3, $4, make_interval(secs => $5 / 1000.0))`,
        [QUEUE, flow.name, groupConcurrency, rateLimit?.limit ?? null, rateLimit?.periodMs ?? null],
      );
    }
    this.#pushAs = flow ?? { name: TASK, push: () => ({}) };
  }

  /** One task of the current kind (see useFlow). @param {number} i */
  pushSample(i) {
    return this.#queue.push(this.#pushAs.name, [i], this.#pushAs.push(i));
  }

  /**
   * A worker and a scheduler, as `pgtq worker --with-scheduler` runs them (the peers' workers
   * run their maintenance in-process too): the scheduler turns the ready ring.
   * @param {number} c
   */
  async startWorker(c) {
    const worker = /** @type {any} */ (this.#queue).worker({ concurrency: c });
    const scheduler = /** @type {any} */ (this.#queue).scheduler();
    this.#services.push(worker, scheduler);
    await Promise.all([worker.start(), scheduler.start()]);
  }

  /**
   * What a worker process of the `processes` measure (bench/worker-process.js) needs to run this
   * subject's worker: the same schema, queue, task and pool size as `startWorker(c)`.
   * @param {number} c
   */
  workerProcessOptions(c) {
    return {
      url: this.ctx.url,
      schema: SCHEMA,
      queue: QUEUE,
      task: TASK,
      max: Math.max(10, c + 2),
      concurrency: c,
    };
  }

  /** Stops the workers started so far: the history case times two runs on one instance. */
  async stopWorkers() {
    await Promise.all(this.#services.splice(0).map((service) => service.stop()));
  }

  /** The tables every claim and finish touches, for the pinned-horizon measure. */
  async hotTables() {
    return [`${quoteIdent(SCHEMA)}.tasks`, `${quoteIdent(SCHEMA)}.ready`];
  }

  /**
   * The candidate search of the claim (sql/task_claim_many.sql, its `picked`), as the worker
   * runs it for a queue with one handler name.
   * @param {number} limit
   */
  async claimProbe(limit) {
    return `SELECT segment, ctid FROM ${quoteIdent(SCHEMA)}.ready
            WHERE queue = '${QUEUE}' AND name = ANY (ARRAY['${TASK}'])
            ORDER BY priority DESC, run_at, id
            LIMIT ${limit}
            FOR UPDATE SKIP LOCKED`;
  }

  /**
   * pgtq's finish statement (sql/task_finish_many.sql) for up to `limit` running tasks, which it
   * locks first (skipping those being finished) to name them; null if none is running.
   * @param {pg.Client} client in the probe's transaction
   * @param {number} limit
   */
  async finishProbe(client, limit) {
    const { rows } = await client.query(
      `SELECT id::text AS id, lease_id FROM ${quoteIdent(SCHEMA)}.tasks
       WHERE state = 'running' LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    if (rows.length === 0) return null;
    const outcomes = rows.map(({ id, lease_id }) => ({ id, lease_id, state: 'succeeded', result: null }));
    return { text: renderSql('task_finish_many', SCHEMA), values: [JSON.stringify(outcomes), null] };
  }

  /** Tasks not yet finished: a task leaves the tasks table when it ends. */
  unfinished() {
    return { db: this.ctx.db, unfinishedSql: `SELECT count(*)::int AS n FROM ${quoteIdent(SCHEMA)}.tasks` };
  }

  /**
   * Fills the history with `rows` finished tasks (one INSERT … SELECT), then VACUUM ANALYZE, as
   * autovacuum would have done on a real history, so the timed run does not pay for it.
   * @param {number} rows
   */
  async fillHistory(rows) {
    const s = quoteIdent(SCHEMA);
    await this.ctx.db.query(`SELECT ${s}.create_history_partitions((now() AT TIME ZONE 'UTC')::date - 1, 3)`);
    await this.ctx.db.query(
      `INSERT INTO ${s}.finished_tasks
         (id, queue, name, args, state, priority, run_at, attempts, max_attempts,
          created_at, started_at, finished_at, worker_id)
       SELECT nextval('${SCHEMA}.task_id_seq'), $2, $3, jsonb_build_array(i), 'succeeded', 0, at, 1, 10,
              at, at, at + interval '5 ms', 'bench-history'
       FROM generate_series(1, $1::int) AS i,
            LATERAL (SELECT now() - make_interval(secs => i % 43200) AS at) AS t`,
      [rows, QUEUE, TASK],
    );
    await this.ctx.db.query(`VACUUM ANALYZE ${s}.finished_tasks`);
  }

  /**
   * pgtq's own claim and finish statements (sql/task_claim_many.sql, sql/task_finish_many.sql) in a
   * loop, `batch` at a time on `connections` connections, with no library around them: what the SQL
   * alone allows. Returns the ms from the first claim until every task is finished.
   * @param {number} n tasks already pushed
   * @param {{ batch: number, connections: number }} options
   */
  async bareSql(n, { batch, connections }) {
    const claim = { name: 'bench_claim_many', text: renderSql('task_claim_many', SCHEMA) };
    const finish = { name: 'bench_finish_many', text: renderSql('task_finish_many', SCHEMA) };
    const clients = Array.from(
      { length: connections },
      () => new pg.Client({ connectionString: this.ctx.url }),
    );
    try {
      await Promise.all(clients.map((client) => client.connect()));
      let finished = 0;
      const loop = async (/** @type {pg.Client} */ client, /** @type {number} */ k) => {
        for (;;) {
          const leaseId = randomUUID();
          // $1 queue, $2 names, $3 limit, $4 lease id, $5 lease ms, $6 worker id, $7 now, $8 flow limit
          const { rows } = await client.query({
            ...claim,
            values: [QUEUE, null, batch, leaseId, 60_000, `bench-bare-sql-${k}`, null, batch, 0],
          });
          if (rows.length === 0) return;
          const outcomes = rows.map((row) => ({ id: row.id, lease_id: leaseId, state: 'succeeded' }));
          // $1 outcomes, $2 now
          const done = await client.query({ ...finish, values: [JSON.stringify(outcomes), null] });
          finished += done.rowCount ?? 0;
        }
      };
      const started = now();
      await Promise.all(clients.map((client, k) => loop(client, k)));
      const ms = now() - started;
      if (finished !== n) throw new Error(`bare SQL finished ${finished} of ${n} tasks`);
      return ms;
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  }

  async teardown() {
    const services = this.#services.reverse();
    const q = this.#q;
    this.#services = [];
    this.#q = undefined;
    await cleanUp([
      ...services.map((service) => () => service.stop()),
      () => q?.close(),
      () => dropSchema(this.ctx.db, SCHEMA),
    ]);
  }
}

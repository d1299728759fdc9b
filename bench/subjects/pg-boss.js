/**
 * pg-boss as a benchmark subject. Completed jobs stay in its job table with state 'completed'
 * until retention removes them, so "all finished" counts the jobs not yet completed.
 */
import { PgBoss } from 'pg-boss';
import { cleanUp, dropSchema, quoteIdent, WorkerSubject } from '../harness.js';

export const name = 'pg-boss';
const SCHEMA = 'pgtq_bench_pg_boss';
const QUEUE = 'bench';

/**
 * @typedef {{ name: string, describe: string, instance: object, queue: object, work: object }} Profile
 * @type {Profile[]}
 */
export const profiles = [
  {
    name: 'default',
    describe:
      'new PgBoss({ max: max(10, c + 2) }), work({ localConcurrency: c }): batchSize 1, polls every 2 s',
    instance: {},
    queue: {},
    work: {},
  },
  {
    name: 'notify',
    describe: 'default + useListenNotify: true, createQueue({ notify: true }) (backstop poll 30 s)',
    instance: { useListenNotify: true },
    queue: { notify: true },
    work: {},
  },
  {
    name: 'batch',
    describe: 'default + work({ batchSize: 100, burstWhenBatchFull: true }): up to c × 100 jobs in flight',
    instance: {},
    queue: {},
    work: { batchSize: 100, burstWhenBatchFull: true },
  },
];

/**
 * @param {import('../run.js').SubjectContext & { profile: Profile }} ctx
 */
export function create(ctx) {
  return new PgBossSubject(ctx);
}

class PgBossSubject extends WorkerSubject {
  /** @type {PgBoss | undefined} */
  #boss;
  warnings = 0;

  /** The constructor options for concurrency c, as printed in the results. */
  instanceOptions(c) {
    return {
      connectionString: this.ctx.url,
      schema: SCHEMA,
      max: Math.max(10, c + 2),
      ...this.ctx.profile.instance,
    };
  }

  /** The work() options for concurrency c. */
  workOptions(c) {
    return { localConcurrency: c, ...this.ctx.profile.work };
  }

  /** What this case runs with, for the results file. */
  settings() {
    const { connectionString: _, ...instance } = this.instanceOptions(this.ctx.concurrency);
    return { instance, queue: this.ctx.profile.queue, work: this.workOptions(this.ctx.concurrency) };
  }

  get #started() {
    if (!this.#boss) throw new Error('pg-boss: setup() first');
    return this.#boss;
  }

  async setup() {
    await dropSchema(this.ctx.db, SCHEMA);
    const boss = new PgBoss(this.instanceOptions(this.ctx.concurrency));
    boss.on('error', (error) => this.ctx.log(`pg-boss error: ${error.message}`));
    boss.on('warning', () => {
      this.warnings++;
    });
    this.#boss = boss;
    await boss.start();
    await boss.createQueue(QUEUE, this.ctx.profile.queue);
  }

  /** @param {number} i @param {Date} [startAfter] */
  pushOne(i, startAfter) {
    return this.#started.send(QUEUE, { i }, startAfter ? { startAfter } : {});
  }

  /** @param {number} start @param {number} end */
  pushRange(start, end) {
    const jobs = [];
    for (let i = start; i < end; i++) jobs.push({ data: { i } });
    return this.#started.insert(QUEUE, jobs);
  }

  /** @param {number} c */
  async startWorker(c) {
    const recorder = this.recorder;
    await this.#started.work(QUEUE, this.workOptions(c), async (jobs) => {
      for (const job of jobs) recorder.hit(/** @type {{ i: number }} */ (job.data).i);
    });
  }

  /** The job table this queue's jobs live in (one shared table unless the queue is partitioned). */
  async #jobTable() {
    const { rows } = await this.ctx.db.query(
      `SELECT table_name FROM ${quoteIdent(SCHEMA)}.queue WHERE name = $1`,
      [QUEUE],
    );
    if (!rows[0]) throw new Error(`pg-boss: no queue "${QUEUE}"`);
    return `${quoteIdent(SCHEMA)}.${quoteIdent(rows[0].table_name)}`;
  }

  /** The tables every fetch and completion touches, for the pinned-horizon measure. */
  async hotTables() {
    return [await this.#jobTable()];
  }

  /**
   * The candidate search of pg-boss's fetch (the "next" CTE of fetchNextJob for a standard queue).
   * @param {number} limit
   */
  async claimProbe(limit) {
    return `SELECT j.id FROM ${await this.#jobTable()} j
             WHERE j.name = '${QUEUE}' AND j.state < 'active' AND NOT j.blocked
               AND j.start_after <= ${quoteIdent(SCHEMA)}.job_now()
             ORDER BY j.priority desc, j.created_on
             LIMIT ${limit}
             FOR UPDATE OF j SKIP LOCKED`;
  }

  /**
   * pg-boss's completion (completeJobs, its UPDATE) for up to `limit` active jobs, which it locks
   * first to name them; null if none is active.
   * @param {import('pg').Client} client in the probe's transaction
   * @param {number} limit
   */
  async finishProbe(client, limit) {
    const table = await this.#jobTable();
    const { rows } = await client.query(
      `SELECT id FROM ${table} WHERE name = $1 AND state = 'active' LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [QUEUE, limit],
    );
    if (rows.length === 0) return null;
    return {
      text: `UPDATE ${table}
             SET completed_on = ${quoteIdent(SCHEMA)}.job_now(), state = 'completed', output = $3::jsonb
             WHERE name = $1 AND id = ANY ($2::uuid[]) AND state = 'active'`,
      values: [QUEUE, rows.map((row) => row.id), null],
    };
  }

  /** Jobs not yet completed: pg-boss keeps completed jobs in its job table. */
  unfinished() {
    return {
      db: this.ctx.db,
      unfinishedSql: `SELECT count(*)::int AS n FROM ${quoteIdent(SCHEMA)}.job
                      WHERE name = $1 AND state IN ('created', 'retry', 'active')`,
      unfinishedParams: [QUEUE],
    };
  }

  async teardown() {
    const boss = this.#boss;
    this.#boss = undefined;
    await cleanUp([
      () => boss?.stop({ graceful: true, close: true, timeout: 10_000 }),
      () => dropSchema(this.ctx.db, SCHEMA),
    ]);
  }
}

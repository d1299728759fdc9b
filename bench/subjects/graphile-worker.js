/**
 * graphile-worker as a benchmark subject. Finished jobs are deleted (it keeps no history), so
 * "all finished" is an empty jobs table.
 */
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import { cleanUp, dropSchema, quoteIdent, WorkerSubject } from '../harness.js';

export const name = 'graphile-worker';
const SCHEMA = 'pgtq_bench_graphile_worker';
const TASK = 'noop';

/** Its own logger writes every job to the console; the bench keeps only warnings and errors. */
const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning')
    process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

/**
 * @typedef {{ name: string, describe: string, preset: (c: number) => object }} Profile
 * @type {Profile[]}
 */
export const profiles = [
  {
    name: 'default',
    describe: 'run({ concurrency: c, maxPoolSize: max(10, c + 2) }), LISTEN/NOTIFY (always on)',
    preset: () => ({}),
  },
  {
    name: 'fast',
    describe: 'default + preset.worker { localQueue: { size: c + 1 }, completeJobBatchDelay: 0 }',
    preset: (c) => ({ worker: { localQueue: { size: c + 1 }, completeJobBatchDelay: 0 } }),
  },
];

/**
 * @param {import('../run.js').SubjectContext & { profile: Profile }} ctx
 */
export function create(ctx) {
  return new GraphileWorkerSubject(ctx);
}

class GraphileWorkerSubject extends WorkerSubject {
  /** @type {import('graphile-worker').WorkerUtils | undefined} */
  #utils;
  /** @type {import('graphile-worker').Runner | undefined} */
  #runner;

  /** The options given to run() for concurrency c, as printed in the results. */
  runOptions(c) {
    return {
      connectionString: this.ctx.url,
      schema: SCHEMA,
      concurrency: c,
      maxPoolSize: Math.max(10, c + 2),
      preset: this.ctx.profile.preset(c),
    };
  }

  /** What this case runs with, for the results file. */
  settings() {
    const { connectionString: _, ...options } = this.runOptions(this.ctx.concurrency);
    return options;
  }

  async setup() {
    await dropSchema(this.ctx.db, SCHEMA);
    this.#utils = await makeWorkerUtils({
      connectionString: this.ctx.url,
      schema: SCHEMA,
      logger: quietLogger,
    });
    await this.#utils.migrate();
  }

  /** @param {number} i */
  pushOne(i, runAt = undefined) {
    return /** @type {import('graphile-worker').WorkerUtils} */ (this.#utils).addJob(TASK, { i }, { runAt });
  }

  /** @param {number} start @param {number} end */
  pushRange(start, end) {
    const jobs = [];
    for (let i = start; i < end; i++) jobs.push({ identifier: TASK, payload: { i } });
    return /** @type {import('graphile-worker').WorkerUtils} */ (this.#utils).addJobs(jobs);
  }

  /** @param {number} c */
  async startWorker(c) {
    const recorder = this.recorder;
    this.#runner = await run({
      ...this.runOptions(c),
      logger: quietLogger,
      noHandleSignals: true,
      crontab: '',
      taskList: {
        [TASK]: async (payload) => {
          recorder.hit(/** @type {{ i: number }} */ (payload).i);
        },
      },
    });
  }

  /** The tables every claim and finish touches, for the pinned-horizon measure. */
  async hotTables() {
    return [`${quoteIdent(SCHEMA)}._private_jobs`, `${quoteIdent(SCHEMA)}._private_job_queues`];
  }

  /**
   * The candidate search of graphile-worker's claim (the first CTE of its get_job statement, named
   * queue strategy 2, database time), for this bench's one task.
   * @param {number} limit
   */
  async claimProbe(limit) {
    const s = quoteIdent(SCHEMA);
    // The task's row, as the worker and add_job make it, so its id is known before either ran.
    await this.ctx.db.query(
      `INSERT INTO ${s}._private_tasks (identifier) VALUES ($1) ON CONFLICT (identifier) DO NOTHING`,
      [TASK],
    );
    const { rows } = await this.ctx.db.query(`SELECT id FROM ${s}._private_tasks WHERE identifier = $1`, [
      TASK,
    ]);
    const taskId = Number(rows[0]?.id);
    return `select jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
              from ${s}._private_jobs as jobs
             where jobs.is_available = true
               and run_at <= now()
               and task_id = any(ARRAY[${taskId}]::int[])
               and (jobs.job_queue_id is null
                    or jobs.job_queue_id in (
                      select id from ${s}._private_job_queues as job_queues
                       where job_queues.is_available = true
                       for update skip locked))
             order by priority asc, run_at asc
             limit ${limit}
             for update skip locked`;
  }

  /**
   * graphile-worker's completion of a batch (batchCompleteJobs, jobs without a named queue) for up
   * to `limit` locked jobs, which it locks first to name them; null if none is locked.
   * @param {import('pg').Client} client in the probe's transaction
   * @param {number} limit
   */
  async finishProbe(client, limit) {
    const s = quoteIdent(SCHEMA);
    const { rows } = await client.query(
      `SELECT id FROM ${s}._private_jobs WHERE locked_at IS NOT NULL LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    if (rows.length === 0) return null;
    return {
      text: `delete from ${s}._private_jobs as jobs using unnest($1::bigint[]) n(n) where id = n`,
      values: [rows.map((row) => row.id)],
    };
  }

  /** Jobs not yet finished: graphile-worker deletes a job when it completes. */
  unfinished() {
    return {
      db: this.ctx.db,
      unfinishedSql: `SELECT count(*)::int AS n FROM ${quoteIdent(SCHEMA)}._private_jobs`,
    };
  }

  async teardown() {
    const runner = this.#runner;
    const utils = this.#utils;
    this.#runner = undefined;
    this.#utils = undefined;
    await cleanUp([() => runner?.stop(), () => utils?.release(), () => dropSchema(this.ctx.db, SCHEMA)]);
  }
}

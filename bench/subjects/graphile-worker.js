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

/**
 * Tasks that run after others (pgtq only), beside plain tasks in the same run: the time from the
 * first push to the last task's end, at c = 10, for
 * - `n` + 1 plain tasks;
 * - fan-out: one task, and `n` tasks after it (pushed in one batch);
 * - fan-in: `n` tasks, and one task after all of them;
 * and what an edge costs: the mean of the two graphs' extra time over the plain run, per edge.
 */
import { PgTq } from '../dist/index.js';
import { dropSchema, now, sleep } from './harness.js';

const SCHEMA = 'pgtq_bench_graph';

/**
 * @param {{ ctx: { url: string, db: import('pg').Pool } }} subject a pgtq subject (bench/subjects/pgtq.js), for its database
 * @param {{ graph: number }} s
 */
export async function measureGraph(subject, s) {
  const n = s.graph;
  await dropSchema(subject.ctx.db, SCHEMA);
  const q = new PgTq('graph', { connectionString: subject.ctx.url, schema: SCHEMA, max: 12 });
  try {
    await q.migrate();
    q.handler({ name: 'noop' }, async () => {});
    await q.worker({ concurrency: 10 }).start();
    /** Runs `push`, then waits until no task of the queue is pending; returns the ms from the first push. */
    const timed = async (/** @type {() => Promise<unknown>} */ push) => {
      const started = now();
      await push();
      while ((await q.summary()).length > 0) await sleep(5);
      return now() - started;
    };
    const plain = await timed(() =>
      q.pushMany(Array.from({ length: n + 1 }, () => ({ name: 'noop', args: [] }))),
    );
    const fanOut = await timed(async () => {
      const root = await q.push('noop');
      await q.pushMany(Array.from({ length: n }, () => ({ name: 'noop', args: [], after: [root] })));
    });
    const fanIn = await timed(async () => {
      const parents = await q.pushMany(Array.from({ length: n }, () => ({ name: 'noop', args: [] })));
      await q.push('noop', [], { after: parents });
    });
    const rate = (/** @type {number} */ ms) => ((n + 1) * 1000) / ms;
    return {
      figures: {
        graphPlain: rate(plain),
        graphFanOut: rate(fanOut),
        graphFanIn: rate(fanIn),
        graphEdgeUs: ((fanOut + fanIn) / 2 - plain) * (1000 / n),
      },
    };
  } finally {
    await q.close();
    await dropSchema(subject.ctx.db, SCHEMA);
  }
}

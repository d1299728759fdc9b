/**
 * The dashboard on a large schema (pgtq only): `finished` tasks in history over the last
 * seven days and `pending` tasks waiting in ten queues. For each page the dashboard serves,
 * the median over REPEATS requests of the time its queries spent in the database (summed,
 * though the overview's run in parallel) and of the whole request.
 */
import pg from 'pg';
import { serveDashboard } from '../dist/dashboard/index.js';
import { PgTq } from '../dist/index.js';
import { dropSchema, now, quoteIdent } from './harness.js';

const SCHEMA = 'pgtq_bench_dashboard';
const QUEUES = 10;
const REPEATS = 7;

/** @typedef {{ finished: number, pending: number }} DashboardScale */

/**
 * @param {{ ctx: { url: string, db: import('pg').Pool } }} subject a pgtq subject, for its database
 * @param {{ dashboard: DashboardScale }} s
 */
export async function measureDashboard(subject, s) {
  const { db, url } = subject.ctx;
  await dropSchema(db, SCHEMA);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  let dbMs = 0;
  const query = pool.query.bind(pool);
  // Every query the dashboard sends goes through pool.query: time each one.
  pool.query = /** @type {any} */ (
    async (/** @type {any[]} */ ...args) => {
      const started = now();
      try {
        return await /** @type {any} */ (query)(...args);
      } finally {
        dbMs += now() - started;
      }
    }
  );
  const q = new PgTq('q0', { pool, schema: SCHEMA });
  try {
    await q.migrate();
    const seeded = await seed(db, q, s.dashboard);
    const served = await serveDashboard(q, { port: 0 });
    /** @param {string} path @returns {Promise<{ db: number, wall: number }>} */
    const time = async (path) => {
      const dbs = [];
      const walls = [];
      for (let i = 0; i < REPEATS; i++) {
        dbMs = 0;
        const started = now();
        const res = await fetch(served.url + path);
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
        walls.push(now() - started);
        dbs.push(dbMs);
      }
      return { db: median(dbs), wall: median(walls) };
    };
    try {
      await time('metrics'); // the first scrape only notes where the next one starts
      const pages = {
        dashboardOverview: await time('api/overview'),
        dashboardOverviewQueue: await time('api/overview?queue=q3'),
        dashboardTasks: await time('api/tasks'),
        dashboardTasksFailed: await time('api/tasks?state=failed'),
        dashboardTasksName: await time('api/tasks?queue=q3&name=task_7'),
        dashboardTasksDeep: await time(`api/tasks?before=${seeded.middleId}`),
        dashboardTask: await time(`api/tasks/${seeded.middleId}`),
        dashboardFailures: await time('api/failures'),
        dashboardMetrics: await time('metrics'),
      };
      /** @type {Record<string, number>} */
      const figures = {};
      for (const [key, { db: dbTime, wall }] of Object.entries(pages)) {
        figures[key] = dbTime;
        figures[`${key}Wall`] = wall;
      }
      return { figures };
    } finally {
      await served.close();
    }
  } finally {
    await q.close();
    await pool.end();
    await dropSchema(db, SCHEMA);
  }
}

/**
 * History written directly, spread over seven days (2 % failed with one of 20 errors, 1 %
 * cancelled), and pending tasks pushed as an app would (a tenth of them delayed).
 * @param {import('pg').Pool} db @param {PgTq} q @param {DashboardScale} scale
 */
async function seed(db, q, { finished, pending }) {
  const s = quoteIdent(SCHEMA);
  await db.query(`SELECT ${s}.create_history_partitions((now() AT TIME ZONE 'UTC')::date - 7, 8)`);
  await db.query(
    `INSERT INTO ${s}.finished_tasks
       (id, queue, name, args, state, priority, run_at, attempts, max_attempts,
        created_at, started_at, finished_at, error, worker_id)
     SELECT nextval('${s}.task_id_seq'), 'q' || i % ${QUEUES}, 'task_' || i % 50, jsonb_build_array(i),
            CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 100 = 1 THEN 'cancelled' ELSE 'succeeded' END::${s}.task_state,
            0, at, 1, 10, at, at + interval '3 ms', at + interval '20 ms',
            CASE WHEN i % 50 = 0 THEN 'Error: failure ' || i % 20 || E'\n    at handler (app.js:1:1)' END,
            'bench-worker'
     FROM generate_series(1, $1::int) AS i,
          LATERAL (SELECT now() - make_interval(secs => (7 * 86400.0) * ($1 - i) / $1) AS at) AS t`,
    [finished],
  );
  const perQueue = Math.ceil(pending / QUEUES);
  for (let queue = 0; queue < QUEUES; queue++) {
    const pusher = new PgTq(`q${queue}`, { pool: /** @type {any} */ (q.pool), schema: SCHEMA });
    for (let done = 0; done < perQueue; done += 10_000) {
      const batch = Math.min(10_000, perQueue - done);
      await pusher.pushMany(
        Array.from({ length: batch }, (_, i) => ({
          name: `task_${i % 50}`,
          args: [i],
          ...(i % 10 === 0 ? { delayMs: 3_600_000 } : {}),
        })),
      );
    }
  }
  await db.query(`VACUUM ANALYZE ${s}.finished_tasks, ${s}.tasks`);
  const { rows } = await db.query(`SELECT id::text FROM ${s}.finished_tasks ORDER BY id OFFSET $1 LIMIT 1`, [
    Math.floor(finished / 2),
  ]);
  return { middleId: rows[0]?.id ?? '1' };
}

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

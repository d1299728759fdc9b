/**
 * The suite's tables beside pgtq's, and what it watches in the queue: how long
 * due tasks wait for a scheduler, and whether everything has drained.
 */
import { spawnSync } from 'node:child_process';
import pg from 'pg';

/**
 * Migrates pgtq's schema with the built command, as an operator would, and
 * creates the suite's tables in schema `chaos`.
 * @param {string} cli the built dist/cli/main.js
 * @param {{ DATABASE_URL: string }} env
 */
export async function prepareDatabase(cli, env) {
  const migrate = spawnSync(process.execPath, [cli, 'migrate'], { env: { ...process.env, ...env } });
  if (migrate.status !== 0) throw new Error(`pgtq migrate failed: ${migrate.stderr}`);
  const client = new pg.Client({ connectionString: env.DATABASE_URL });
  await client.connect();
  try {
    await client.query(`
      CREATE SCHEMA chaos;
      -- The business write of each push.
      CREATE TABLE chaos.orders (logical_id text PRIMARY KEY, producer text NOT NULL);
      -- One row per committed push, written in the push's transaction.
      CREATE TABLE chaos.pushes (
        logical_id text PRIMARY KEY, task_id bigint NOT NULL, via text NOT NULL,
        delay_ms integer NOT NULL, fail_first boolean NOT NULL, slow_ms integer NOT NULL);
      -- Written by each attempt in its transaction. No unique constraint: a duplicate must be countable.
      CREATE TABLE chaos.effects (
        logical_id text NOT NULL, task_id bigint NOT NULL, attempt integer NOT NULL,
        worker_pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE INDEX ON chaos.effects (logical_id);
      CREATE INDEX ON chaos.effects (task_id);
    `);
  } finally {
    await client.end();
  }
}

/**
 * Waits until nothing is scheduled, ready or running, or `timeoutMs` passes.
 * @param {import('./admin.mjs').Admin} admin
 */
export async function drainQueue(admin, timeoutMs) {
  const from = Date.now();
  for (;;) {
    const rows = await admin.rows('SELECT state::text, count(*)::int AS n FROM pgtq.tasks GROUP BY state');
    if (rows.length === 0) return { ok: true, ms: Date.now() - from, left: '' };
    const left = rows.map((row) => `${row.n} ${row.state}`).join(', ');
    if (Date.now() - from > timeoutMs) return { ok: false, ms: Date.now() - from, left };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Watches, twice a second, how long the most overdue scheduled task has been
 * waiting to be promoted: a scheduler that stops working shows here.
 * @param {import('./admin.mjs').Admin} admin
 */
export function watchOverdue(admin) {
  let longest = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const ms = await admin
        .number(
          `SELECT coalesce(extract(epoch FROM clock_timestamp() - min(run_at)) * 1000, 0)
           FROM pgtq.tasks WHERE state = 'scheduled' AND run_at < clock_timestamp()`,
        )
        .catch(() => 0);
      longest = Math.max(longest, ms);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  return {
    longestMs: () => longest,
    stop: () => {
      stopped = true;
      return loop;
    },
  };
}

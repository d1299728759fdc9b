import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
// Types only, erased from the build: the module itself is loaded on demand, see importFallbackDatabase.
import type { FallbackDatabase } from '../../dev/fallback-database.js';
import { PgTq, Retry } from '../../index.js';
import { type Command, parseCommand, portNumber, table } from '../common.js';

const SCHEMA = 'pgtq_demo';
const FOLLOWERS = 1000;

export const demoCommand: Command = {
  summary: 'run an end-to-end example: push in a transaction, work, schedule, inspect',
  usage: `pgtq demo [--database-url <url>] [--keep] [--dashboard [--port <n>]]

Uses $DATABASE_URL (in its own schema "${SCHEMA}", leaving your data alone); in a
development checkout, starts a throwaway PostgreSQL when none is set. Pushes tasks
inside a business transaction, one in a rolled-back transaction (it never runs), a
delayed task and a retried one, runs a worker and a scheduler, shows progress and the
SQL views, and shuts down. Ctrl-C ends it at once.
  --keep        keep the "${SCHEMA}" schema afterwards to explore it with psql
  --dashboard   serve the dashboard (pgtq dashboard) while the demo runs, and after
                it until Ctrl-C; --port <n> (default 4000)`,
  async run({ argv, out, err }) {
    const { values } = parseCommand(argv, {
      keep: { type: 'boolean' },
      dashboard: { type: 'boolean' },
      port: { type: 'string' },
    });
    const say = (line: string) => out.write(`${line}\n`);
    const interrupt = exitOnInterrupt(err);
    let fallback: FallbackDatabase | undefined;
    let url = values['database-url'] ?? process.env.DATABASE_URL;
    if (!url) {
      const { startFallbackDatabase } = await importFallbackDatabase();
      say('No DATABASE_URL: starting a throwaway PostgreSQL…');
      fallback = await startFallbackDatabase(
        values.verbose ? { log: (line) => err.write(`  ${line}\n`) } : {},
      );
      url = fallback.url;
    }
    const q = new PgTq('demo', { connectionString: url, schema: SCHEMA });
    const schema = `"${SCHEMA}"`; // a plain lower-case name: quoting is all it needs
    try {
      say(`Migrating schema ${SCHEMA}…`);
      // The demo's own schema: start clean even if an earlier run was interrupted.
      await q.pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await q.migrate();
      const dashboard = values.dashboard ? await serveDemoDashboard(q, values.port) : undefined;
      if (dashboard) say(`Dashboard: ${dashboard.url}`);
      await q.pool.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.users (id serial PRIMARY KEY, email text NOT NULL)`,
      );
      await q.pool.query(
        `CREATE TABLE IF NOT EXISTS ${schema}.notifications (post_id int, follower int, PRIMARY KEY (post_id, follower))`,
      );

      // Handlers: plain functions, registered on the queue.
      const sendWelcomeEmail = q.handler(async function send_welcome_email(email: string) {
        await new Promise((resolve) => setTimeout(resolve, 20)); // the SMTP round trip
        return { sent: email };
      });
      const notifyFollower = q.handler(async function notify_follower(postId: number, follower: number) {
        await q.pool.query(`INSERT INTO ${schema}.notifications VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
          postId,
          follower,
        ]);
      });
      const fanOut = q.handler(async function fan_out(postId: number) {
        const followers = Array.from({ length: FOLLOWERS }, (_, i) => [postId, i] as [number, number]);
        await notifyFollower.pushMany(followers); // one round trip
        return { followers: followers.length };
      });
      const resizeImage = q.handler(async function resize_image(name: string) {
        if (this.task?.attempt === 1) throw new Retry({ delayMs: 200, reason: 'image store busy' });
        return { resized: name, attempt: this.task?.attempt };
      });
      const reminder = q.handler(async function reminder(text: string) {
        return { reminded: text };
      });

      const heartbeat = q.handler(async function heartbeat() {
        return new Date().toISOString();
      });
      let beats = 0;

      const worker = q.worker({ concurrency: 10 });
      const scheduler = q.scheduler();
      let finished = 0;
      worker.on('task:success', (task) => {
        if (task.name === 'heartbeat') beats++;
        else finished++;
        if (task.name !== 'notify_follower') say(`  ✓ ${task.name} #${task.id} (attempt ${task.attempt})`);
      });
      worker.on('task:retry', (task, _error, delayMs) =>
        say(`  ↻ ${task.name} #${task.id} retries in ${delayMs} ms`),
      );
      await scheduler.start();
      await worker.start();

      say('\n1. Sign-up: the user row and its welcome email commit together');
      const client = await q.pool.connect();
      try {
        await client.query('BEGIN');
        const { rows } = await client.query(`INSERT INTO ${schema}.users (email) VALUES ($1) RETURNING id`, [
          'ada@example.com',
        ]);
        const welcome = await sendWelcomeEmail.with({ client }).push('ada@example.com');
        await client.query('COMMIT');
        say(`   user ${rows[0]?.id} created, task #${welcome.id} pushed in the same transaction`);

        say('2. A sign-up that fails: its transaction rolls back, and so does its task');
        await client.query('BEGIN');
        const ghost = await sendWelcomeEmail.with({ client }).push('ghost@example.com');
        await client.query('ROLLBACK');
        const exists = await q.pool.query(`SELECT 1 FROM ${schema}.all_tasks WHERE id = $1`, [ghost.id]);
        say(`   task #${ghost.id} exists after rollback: ${exists.rowCount === 1}`);
      } finally {
        client.release();
      }

      say('3. A cron schedule: a heartbeat every second (six fields: seconds first)');
      await q.schedule('heartbeat', '* * * * * *', heartbeat);

      say(
        `4. A post fanned out to ${FOLLOWERS} followers, an image resize that retries once, a reminder in 1 s`,
      );
      const post = await fanOut.push(7);
      const image = await resizeImage.push('cat.png');
      const later = await reminder.with({ delayMs: 1000 }).push('water the plants');
      const pushedAt = Date.now();
      say('\nProgress:');
      await Promise.all([post, image, later].map((ref) => ref.result({ timeoutMs: 30_000 })));
      say(`   reminder ran ${Date.now() - pushedAt} ms after it was pushed with delayMs 1000`);
      while (finished < FOLLOWERS + 4) await new Promise((resolve) => setTimeout(resolve, 20));
      const { rows: sent } = await q.pool.query(`SELECT count(*)::int AS n FROM ${schema}.notifications`);
      say(`   ${sent[0]?.n} follower notifications written`);
      while (beats < 2) await new Promise((resolve) => setTimeout(resolve, 20));
      await q.unschedule('heartbeat');
      say(`   the cron schedule fired ${beats} times, once per second`);

      say('\nSELECT kind, queue, pid, running FROM pgtq_demo.live_processes;   -- who is working');
      const live = await q.pool.query(
        `SELECT kind, queue, pid, running FROM ${schema}.live_processes ORDER BY kind`,
      );
      out.write(table(live.rows));

      await worker.stop();
      await scheduler.stop();

      say('\nSELECT * FROM pgtq_demo.queue_summary;   -- what waits and runs now');
      const summary = await q.pool.query(
        `SELECT queue, state, count, oldest_age FROM ${schema}.queue_summary`,
      );
      out.write(table(summary.rows));
      say(
        '\nSELECT name, state, count(*), max(attempts), avg(wait_time), avg(run_time) FROM pgtq_demo.task_history GROUP BY 1, 2;   -- times in ms',
      );
      const history = await q.pool.query(
        `SELECT name, state, count(*)::int AS count, max(attempts) AS max_attempts,
                round(avg(extract(epoch FROM wait_time)) * 1000, 1) AS avg_wait_ms,
                round(avg(extract(epoch FROM run_time)) * 1000, 1) AS avg_run_ms
         FROM ${schema}.task_history GROUP BY name, state ORDER BY name`,
      );
      out.write(table(history.rows));
      say('\nSELECT minute, name, finished, failed FROM pgtq_demo.throughput;   -- per minute and task name');
      const throughput = await q.pool.query(
        `SELECT to_char(minute, 'HH24:MI') AS minute, name, finished, failed
         FROM ${schema}.throughput ORDER BY minute, name`,
      );
      out.write(table(throughput.rows));
      say('\nDone: every committed task ran once; the rolled-back one never existed.');
      if (dashboard) {
        say(`\nThe dashboard stays up at ${dashboard.url} — Ctrl-C to end.`);
        interrupt[Symbol.dispose]();
        await new Promise((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
        await dashboard.close();
      }
      return 0;
    } finally {
      interrupt[Symbol.dispose]();
      if (!values.keep) await q.pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await q.close();
      await fallback?.stop();
    }
  },
};

/** The dashboard over the demo's schema, on `port` (default 4000), loaded only when asked for. */
async function serveDemoDashboard(q: PgTq, port: string | undefined) {
  const { serveDashboard } = await import('../../dashboard/index.js');
  return serveDashboard(q, { port: portNumber('port', port, 4000) });
}

/**
 * Until disposed, SIGINT and SIGTERM end the demo at once, as they would by default, but through
 * process.exit(): a throwaway server is then removed by its exit hook before the queue's connections
 * see it go and fail noisily.
 */
function exitOnInterrupt(err: NodeJS.WritableStream): Disposable {
  const interrupted = (signal: NodeJS.Signals) => {
    err.write(`\npgtq demo: interrupted by ${signal}\n`);
    process.exit(128 + (constants.signals[signal] ?? 0));
  };
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  return {
    [Symbol.dispose]() {
      process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
    },
  };
}

/**
 * The throwaway server is development code, left out of the published package, so it is imported only
 * when needed; without it the demo needs a DATABASE_URL.
 */
async function importFallbackDatabase(): Promise<typeof import('../../dev/fallback-database.js')> {
  const url = new URL('../../dev/fallback-database.js', import.meta.url);
  try {
    return await import('../../dev/fallback-database.js');
  } catch (error) {
    const code = (error as { code?: string }).code;
    // Only the module itself missing means "installed package"; a broken checkout should say what broke.
    if (code !== 'ERR_MODULE_NOT_FOUND' || !String((error as Error).message).includes(fileURLToPath(url))) {
      throw error;
    }
    throw new Error(
      'no DATABASE_URL: set DATABASE_URL (or --database-url) to the PostgreSQL to run the demo on',
    );
  }
}

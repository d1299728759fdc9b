import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { NotJsonError, UnknownHandlerError, ValidationError } from '../../src/index.js';
import type { Logger } from '../../src/logger.js';
import { silentLogger } from '../../src/logger.js';
import { CronService } from '../../src/scheduler/cron-service.js';
import { defineSchedule, listSchedules } from '../../src/scheduler/schedules.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_cron');
// One queue for everything: a cron service serves every schedule of the schema.
const q = db.queue('cron');
/** The queue, as the schedule functions see it: a producer with no handlers, so any task name goes. */
const target = { queue: q.name, pool: q.pool, statements: q.statements };

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const t0 = new Date('2030-01-01T00:00:00Z');
const plus = (ms: number) => new Date(t0.getTime() + ms);

function service(logger: Logger = silentLogger) {
  const onError = (error: unknown) => {
    throw error;
  };
  return new CronService({ pool: q.pool, statements: q.statements, logger }, { maxSleepMs: 30_000, onError });
}

function recordingLogger() {
  const errors: { message: string; fields: Record<string, unknown> | undefined }[] = [];
  const logger: Logger = { ...silentLogger, error: (message, fields) => errors.push({ message, fields }) };
  return { logger, errors };
}

async function tasksOf(taskName: string) {
  return db.rows<{ id: string; run_at: Date; args: unknown[]; state: string; priority: number }>(
    'SELECT id::text AS id, run_at, args, state, priority FROM :schema.tasks WHERE name = $1 ORDER BY run_at',
    [taskName],
  );
}

afterEach(async () => {
  await db.rows('DELETE FROM :schema.schedules');
});

describe('firing', () => {
  it('enqueues exactly one task per fire time with three services running at once', async () => {
    await defineSchedule(target, 'tick', '* * * * * *', 'tick_task', [1]);
    const services = [service(), service(), service()];
    // first run: computes the first fire time, after t0
    await Promise.all(services.map((s) => s.runOnce(t0)));
    let fired = 0;
    for (let second = 1; second <= 10; second++) {
      const results = await Promise.all(services.map((s) => s.runOnce(plus(second * SECOND))));
      fired += results.reduce((sum, result) => sum + result.fired, 0);
    }
    expect(fired).toBe(10);
    const tasks = await tasksOf('tick_task');
    expect(tasks.map((task) => task.run_at)).toEqual(
      Array.from({ length: 10 }, (_, i) => plus((i + 1) * SECOND)),
    );
    expect(tasks.every((task) => task.state === 'ready' && task.args[0] === 1)).toBe(true);
    const fires = await db.rows<{ fire_at: Date; task_id: string }>(
      `SELECT fire_at, task_id::text AS task_id FROM :schema.schedule_fires WHERE name = 'tick' ORDER BY fire_at`,
    );
    expect(fires.map((fire) => fire.task_id)).toEqual(tasks.map((task) => task.id));
    const [info] = await listSchedules(target);
    expect(info).toMatchObject({ lastFiredAt: plus(10 * SECOND), nextFireAt: plus(11 * SECOND) });
  });

  it('pushes nothing twice when the same tick runs again', async () => {
    await defineSchedule(target, 'again', '*/5 * * * * *', 'again_task');
    const s = service();
    await s.runOnce(t0);
    expect(await s.runOnce(plus(5 * SECOND))).toEqual({ fired: 1 });
    expect(await s.runOnce(plus(5 * SECOND))).toEqual({ fired: 0 });
    expect(await s.runOnce(plus(9 * SECOND))).toEqual({ fired: 0 });
    expect(await tasksOf('again_task')).toHaveLength(1);
  });

  it('catches up after downtime: skip pushes the latest fire time, backfill the latest n', async () => {
    await defineSchedule(target, 'skipper', '* * * * *', 'skip_task', [], { catchUp: 'skip' });
    await defineSchedule(target, 'filler', '* * * * *', 'fill_task', [], { catchUp: { backfill: 3 } });
    const s = service();
    await s.runOnce(t0);
    expect(await s.runOnce(plus(1 * MINUTE))).toEqual({ fired: 2 });
    // down from 00:01:00 to 00:10:30: fire times 00:02 … 00:10 were missed
    expect(await s.runOnce(plus(10 * MINUTE + 30 * SECOND))).toEqual({ fired: 1 + 3 });
    expect((await tasksOf('skip_task')).map((task) => task.run_at)).toEqual([
      plus(1 * MINUTE),
      plus(10 * MINUTE),
    ]);
    expect((await tasksOf('fill_task')).map((task) => task.run_at)).toEqual([
      plus(1 * MINUTE),
      plus(8 * MINUTE),
      plus(9 * MINUTE),
      plus(10 * MINUTE),
    ]);
    // both carry on from the next fire time
    expect(await s.runOnce(plus(11 * MINUTE))).toEqual({ fired: 2 });
  });

  it('keeps its place when registered again unchanged, and starts afresh on a new expression', async () => {
    await defineSchedule(target, 'restart', '* * * * *', 'restart_task', ['a']);
    const s = service();
    await s.runOnce(t0);
    const [before] = await listSchedules(target);
    expect(before?.nextFireAt).toEqual(plus(MINUTE));
    // a process restarting registers its schedules again: the missed fire time stays due
    await defineSchedule(target, 'restart', '* * * * *', 'restart_task', ['b']);
    expect((await listSchedules(target))[0]).toMatchObject({ nextFireAt: plus(MINUTE), args: ['b'] });
    expect(await s.runOnce(plus(MINUTE))).toEqual({ fired: 1 });
    await defineSchedule(target, 'restart', '0 * * * *', 'restart_task', ['b']);
    expect((await listSchedules(target))[0]?.nextFireAt).toBeNull();
    await s.runOnce(plus(MINUTE + SECOND));
    expect((await listSchedules(target))[0]?.nextFireAt).toEqual(plus(60 * MINUTE));
  });

  it('fires a daily 02:30 Europe/Berlin schedule once a day through the autumn change', async () => {
    await defineSchedule(target, 'nightly', '30 2 * * *', 'nightly_task', [], { tz: 'Europe/Berlin' });
    const s = service();
    const start = new Date('2026-10-24T00:00:00Z').getTime();
    for (let t = start; t <= start + 3 * 24 * 60 * MINUTE; t += 15 * MINUTE) await s.runOnce(new Date(t));
    expect((await tasksOf('nightly_task')).map((task) => task.run_at.toISOString())).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
    // fire records a day older than the latest are dropped: they can never be due again
    const fires = await db.rows<{ fire_at: Date }>(
      `SELECT fire_at FROM :schema.schedule_fires WHERE name = 'nightly'`,
    );
    expect(fires.map((fire) => fire.fire_at.toISOString())).toEqual(['2026-10-26T01:30:00.000Z']);
  });
});

describe('schedules from SQL', () => {
  it('fires a schedule created with schedule(), and wakes a listening scheduler', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    try {
      await listener.query(`LISTEN "${db.schema}.task_scheduled"`);
      const notified = new Promise<string | undefined>((resolve) =>
        listener.once('notification', (message) => resolve(message.payload)),
      );
      await db.rows(
        `SELECT :schema.schedule('cron', 'from-sql', '*/5 * * * * *', 'sql_task', '["a", 1]', 'Europe/Berlin', priority => 3)`,
      );
      expect(await notified).toBe('cron');
    } finally {
      await listener.end();
    }
    const s = service();
    expect(await s.nextWakeAt(t0)).toEqual(t0); // a schedule awaits its first fire time
    await s.runOnce(t0);
    expect(await s.nextWakeAt(t0)).toEqual(plus(5 * SECOND));
    expect(await s.runOnce(plus(5 * SECOND))).toEqual({ fired: 1 });
    expect(await tasksOf('sql_task')).toMatchObject([
      { run_at: plus(5 * SECOND), args: ['a', 1], priority: 3 },
    ]);
    expect(await db.rows(`SELECT :schema.unschedule('cron', 'from-sql') AS removed`)).toEqual([
      { removed: true },
    ]);
    expect(await db.rows('SELECT * FROM :schema.schedule_fires')).toEqual([]);
  });

  it('logs a bad expression or time zone once and skips it, without stopping the others', async () => {
    await db.rows(`SELECT :schema.schedule('cron', 'bad-expression', '61 * * * *', 'x')`);
    await db.rows(`SELECT :schema.schedule('cron', 'bad-tz', '* * * * * *', 'x', tz => 'Europe/Berln')`);
    await db.rows(`SELECT :schema.schedule('cron', 'good', '* * * * * *', 'good_task')`);
    const { logger, errors } = recordingLogger();
    const s = service(logger);
    await s.runOnce(t0);
    expect(errors.map((error) => error.fields?.error)).toEqual([
      expect.stringMatching(/^Invalid cron expression "61 \* \* \* \*": /),
      'Invalid time zone "Europe/Berln": expected an IANA time zone name such as "Europe/Berlin" or "UTC"',
    ]);
    expect(errors[0]).toMatchObject({
      message: 'invalid cron schedule skipped',
      fields: { queue: 'cron', schedule: 'bad-expression' },
    });
    expect(await s.runOnce(plus(SECOND))).toEqual({ fired: 1 });
    expect(await s.runOnce(plus(2 * SECOND))).toEqual({ fired: 1 });
    expect(errors).toHaveLength(2); // reported once, not on every run
    const broken = (await listSchedules(target)).filter((info) => info.error !== null);
    expect(broken.map((info) => info.name)).toEqual(['bad-expression', 'bad-tz']);
    // fixing it from SQL clears the error
    await db.rows(`SELECT :schema.schedule('cron', 'bad-expression', '* * * * * *', 'fixed_task')`);
    await s.runOnce(plus(3 * SECOND));
    expect(await s.runOnce(plus(4 * SECOND))).toEqual({ fired: 2 });
    expect(await tasksOf('fixed_task')).toHaveLength(1);
  });
});

describe('registration in code', () => {
  it('rejects bad expressions, time zones and options with clear ValidationErrors, storing nothing', async () => {
    const define = (cron: string, options = {}, args: unknown[] = []) =>
      defineSchedule(target, 'nightly-report', cron, 'report', args, options);
    await expect(define('0 3 * *')).rejects.toThrow(
      new ValidationError(
        'Invalid cron expression "0 3 * *": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first), got 4',
      ),
    );
    await expect(define('61 3 * * *')).rejects.toThrow(/^Invalid cron expression "61 3 \* \* \*": /);
    await expect(define('0 3 * * *', { tz: 'Europe/Berln' })).rejects.toThrow(
      'Invalid time zone "Europe/Berln": expected an IANA time zone name such as "Europe/Berlin" or "UTC"',
    );
    await expect(define('0 3 * * *', { tzz: 'UTC' })).rejects.toThrow(
      'schedule "nightly-report": options: unknown option "tzz" (did you mean "tz"?)',
    );
    await expect(define('0 3 * * *', { catchUp: { backfill: 0 } })).rejects.toBeInstanceOf(ValidationError);
    await expect(define('0 3 * * *', { catchUp: 'all' })).rejects.toBeInstanceOf(ValidationError);
    await expect(define('0 3 * * *', {}, [undefined])).rejects.toBeInstanceOf(NotJsonError);
    await expect(defineSchedule(target, '', '0 3 * * *', 'report')).rejects.toBeInstanceOf(ValidationError);
    expect(await listSchedules(target)).toEqual([]);
  });

  it('takes a handler, with its defaults, and knows the task names of a queue with handlers', async () => {
    const withHandlers = db.queue('with-handlers');
    const report = withHandlers.handler({ priority: 7, maxAttempts: 2 }, async function nightly_report() {});
    await withHandlers.schedule('nightly-report', '0 3 * * *', report, [], { tz: 'Europe/Berlin' });
    expect(await withHandlers.schedules()).toMatchObject([
      {
        queue: 'with-handlers',
        name: 'nightly-report',
        cron: '0 3 * * *',
        tz: 'Europe/Berlin',
        taskName: 'nightly_report',
        priority: 7,
        maxAttempts: 2,
        catchUp: 'skip',
        nextFireAt: null,
        error: null,
      },
    ]);
    await expect(withHandlers.schedule('typo', '0 3 * * *', 'nightly_reprot')).rejects.toBeInstanceOf(
      UnknownHandlerError,
    );
    await expect(defineSchedule(target, 'elsewhere', '0 3 * * *', report)).rejects.toThrow(
      'handler "nightly_report" is registered on queue "with-handlers", not "cron"',
    );
    expect(await withHandlers.unschedule('nightly-report')).toBe(true);
    expect(await withHandlers.unschedule('nightly-report')).toBe(false);
  });
});

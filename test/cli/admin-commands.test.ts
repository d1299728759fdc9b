import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { PgTq, TaskRow } from '../../src/index.js';
import { described, lines, pgtq, STACK_FRAME } from '../helpers/cli.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_cli_admin');

/** A task id no test creates. */
const NO_SUCH_ID = '999999999';
/** Pops hold their lease this long, so no rescue can move a popped task while a test looks at it. */
const LONG_LEASE_MS = 600_000;

/** The test database and schema, through the environment as a deployment would set them. */
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };

/** Runs `pgtq <args>` with the test database, expects exit 0 and nothing on stderr, and returns stdout. */
async function ok(args: string[]): Promise<string> {
  const result = await pgtq(args, env);
  expect(result.code, described(result)).toBe(0);
  expect(result.stderr, described(result)).toBe('');
  return result.stdout;
}

/** Expects a bad-usage exit: code 2, nothing on stdout, exactly `message` as one line on stderr. */
async function badUsage(args: string[], message: string, extraEnv: Record<string, string> = {}) {
  const result = await pgtq(args, { ...env, ...extraEnv });
  expect(result.code, described(result)).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.stderr).toBe(`pgtq: ${message}\n`);
  expect(result.stderr).not.toMatch(STACK_FRAME);
}

/**
 * The cells of a table printed by the CLI, by column name. Columns are cut where the rule's
 * dashes start, so empty cells and cells with spaces are read right.
 */
function parseTable(text: string): { columns: string[]; rows: Record<string, string>[] } {
  const [header = '', rule = '', ...body] = lines(text);
  expect(rule).toMatch(/^-+( +-+)*$/);
  const starts = [...rule.matchAll(/-+/g)].map((match) => match.index ?? 0);
  const cut = (line: string) => starts.map((start, i) => line.slice(start, starts[i + 1]).trim());
  const columns = cut(header);
  return {
    columns,
    rows: body.map((line) => Object.fromEntries(cut(line).map((cell, i) => [columns[i], cell]))),
  };
}

type StoredTask = TaskRow;
const TASK_COLUMNS = `id::text AS id, queue, name, args, state::text AS state, priority, run_at, attempts,
  max_attempts, key, created_at, started_at, finished_at, result, error, progress, group_key, worker_id`;

/** A queue's tasks, pending or finished, newest first, read straight from the database. */
const storedTasks = (queue: string) =>
  db.rows<StoredTask>(`SELECT ${TASK_COLUMNS} FROM :schema.all_tasks WHERE queue = $1 ORDER BY id DESC`, [
    queue,
  ]);

async function storedTask(id: string): Promise<StoredTask | undefined> {
  const [row] = await db.rows<StoredTask>(`SELECT ${TASK_COLUMNS} FROM :schema.all_tasks WHERE id = $1`, [
    id,
  ]);
  return row;
}

/** The row of `id` in the hot table (pending and running tasks), with the columns history lacks. */
async function pendingRow(id: string) {
  const [row] = await db.rows<{
    state: string;
    attempts: number;
    last_error: string | null;
    cancel_requested_at: Date | null;
  }>(
    'SELECT state::text AS state, attempts, last_error, cancel_requested_at FROM :schema.tasks WHERE id = $1',
    [id],
  );
  return row;
}

/** Values as JSON carries them (dates become strings). */
const asJson = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

/** Pushes a task of `name` with one attempt, pops it and fails it for good; returns its id. */
async function failedTask(q: PgTq, name: string, error = 'boom'): Promise<string> {
  const ref = await q.push(name, [], { maxAttempts: 1 });
  const task = await q.pop({ names: [name], leaseMs: LONG_LEASE_MS });
  expect(task?.id).toBe(ref.id);
  await task?.fail(new Error(error));
  expect((await storedTask(ref.id))?.state).toBe('failed');
  return ref.id;
}

/** Pushes a task of `name` and pops it, so it is running (with a long lease); returns its id. */
async function runningTask(q: PgTq, name: string): Promise<string> {
  const ref = await q.push(name, []);
  const task = await q.pop({ names: [name], leaseMs: LONG_LEASE_MS });
  expect(task?.id).toBe(ref.id);
  expect((await storedTask(ref.id))?.state).toBe('running');
  return ref.id;
}

describe('pgtq tasks', () => {
  const QUEUE = 'cli_tasks';
  let ids: { failed: string; succeeded: string; ready: string; scheduled: string; long: string };

  it('lists the queue’s tasks newest first, one line each with id, name, state, attempts, times, args and error', async () => {
    const q = db.queue(QUEUE);
    const failed = await failedTask(q, 'a', 'disk full\nwhile writing /tmp/x');
    const succeededRef = await q.push('b', [2], { key: 'k2' });
    const popped = await q.pop({ names: ['b'] });
    expect(popped?.id).toBe(succeededRef.id);
    await popped?.complete({ ok: true });
    const [ready, scheduled, long] = await q.pushMany([
      { name: 'a', args: [3] },
      { name: 'a', args: [4], delayMs: 3_600_000 },
      { name: 'c', args: ['x'.repeat(100)] },
    ]);
    ids = {
      failed,
      succeeded: succeededRef.id,
      ready: ready?.id ?? '',
      scheduled: scheduled?.id ?? '',
      long: long?.id ?? '',
    };
    // another queue's task is never listed
    await db.queue('cli_tasks_other').push('a', [99]);

    const stored = await storedTasks(QUEUE);
    expect(stored.map((t) => [t.id, t.state])).toEqual([
      [ids.long, 'ready'],
      [ids.scheduled, 'scheduled'],
      [ids.ready, 'ready'],
      [ids.succeeded, 'succeeded'],
      [ids.failed, 'failed'],
    ]);

    const { columns, rows } = parseTable(await ok(['tasks', '--queue', QUEUE]));
    expect(columns).toEqual(['id', 'name', 'state', 'attempts', 'run_at', 'finished_at', 'args', 'error']);
    const byId = new Map(stored.map((t) => [t.id, t]));
    const times = (id: string) => ({
      run_at: byId.get(id)?.run_at.toISOString(),
      finished_at: byId.get(id)?.finished_at?.toISOString() ?? '',
    });
    expect(rows).toEqual([
      // args longer than 40 characters are cut, with an ellipsis
      {
        id: ids.long,
        name: 'c',
        state: 'ready',
        attempts: '0/10',
        ...times(ids.long),
        args: `["${'x'.repeat(37)}…`,
        error: '',
      },
      {
        id: ids.scheduled,
        name: 'a',
        state: 'scheduled',
        attempts: '0/10',
        ...times(ids.scheduled),
        args: '[4]',
        error: '',
      },
      {
        id: ids.ready,
        name: 'a',
        state: 'ready',
        attempts: '0/10',
        ...times(ids.ready),
        args: '[3]',
        error: '',
      },
      {
        id: ids.succeeded,
        name: 'b',
        state: 'succeeded',
        attempts: '1/10',
        ...times(ids.succeeded),
        args: '[2]',
        error: '',
      },
      // only the first line of the error
      {
        id: ids.failed,
        name: 'a',
        state: 'failed',
        attempts: '1/1',
        ...times(ids.failed),
        args: '[]',
        error: 'Error: disk full',
      },
    ]);
    expect(times(ids.failed).finished_at).not.toBe('');
  });

  const listed = async (...args: string[]) =>
    parseTable(await ok(['tasks', '-q', QUEUE, ...args])).rows.map((row) => [row.id, row.state]);

  it('--state filters by one state or several', async () => {
    expect(await listed('--state', 'failed')).toEqual([[ids.failed, 'failed']]);
    expect(await listed('--state', 'ready,scheduled')).toEqual([
      [ids.long, 'ready'],
      [ids.scheduled, 'scheduled'],
      [ids.ready, 'ready'],
    ]);
    expect(await listed('-s', 'succeeded')).toEqual([[ids.succeeded, 'succeeded']]);
    expect(await ok(['tasks', '-q', QUEUE, '--state', 'cancelled'])).toBe('(none)\n');
  });

  it('--name and --key filter by task name and key, pending or finished', async () => {
    expect(await listed('--name', 'a')).toEqual([
      [ids.scheduled, 'scheduled'],
      [ids.ready, 'ready'],
      [ids.failed, 'failed'],
    ]);
    expect(await listed('--key', 'k2')).toEqual([[ids.succeeded, 'succeeded']]);
    expect(await listed('--name', 'a', '--state', 'failed')).toEqual([[ids.failed, 'failed']]);
    expect(await ok(['tasks', '-q', QUEUE, '--name', 'nothing_by_this_name'])).toBe('(none)\n');
  });

  it('--limit with --before pages through every task, newest first', async () => {
    const page1 = await listed('--limit', '2');
    expect(page1.map(([id]) => id)).toEqual([ids.long, ids.scheduled]);
    const page2 = await listed('--limit', '2', '--before', ids.scheduled);
    expect(page2.map(([id]) => id)).toEqual([ids.ready, ids.succeeded]);
    const page3 = await listed('--limit', '2', '--before', ids.succeeded);
    expect(page3.map(([id]) => id)).toEqual([ids.failed]);
    expect(await ok(['tasks', '-q', QUEUE, '--limit', '2', '--before', ids.failed])).toBe('(none)\n');
  });

  it('--json prints the rows the database holds, with every field', async () => {
    const json = JSON.parse(await ok(['tasks', '-q', QUEUE, '--json'])) as StoredTask[];
    expect(json).toEqual(asJson(await storedTasks(QUEUE)));
    expect(json.find((t) => t.id === ids.succeeded)).toMatchObject({ key: 'k2', result: { ok: true } });
    expect(json.find((t) => t.id === ids.failed)?.error).toMatch(
      /^Error: disk full\nwhile writing \/tmp\/x\n/,
    );

    const filtered = JSON.parse(
      await ok(['tasks', '-q', QUEUE, '--json', '--state', 'failed']),
    ) as StoredTask[];
    expect(filtered.map((t) => t.id)).toEqual([ids.failed]);
    expect(JSON.parse(await ok(['tasks', '-q', 'cli_tasks_empty', '--json']))).toEqual([]);
  });

  it.each([
    {
      args: ['--state', 'bogus'],
      message:
        '--state: "bogus" is not one of waiting, scheduled, ready, running, succeeded, failed, cancelled',
    },
    {
      args: ['--state', 'ready,bogus'],
      message:
        '--state: "bogus" is not one of waiting, scheduled, ready, running, succeeded, failed, cancelled',
    },
    { args: ['--limit', '0'], message: '--limit must be an integer from 1 to 10000, got "0"' },
    { args: ['--limit', '10001'], message: '--limit must be an integer from 1 to 10000, got "10001"' },
    { args: ['--limit', 'ten'], message: '--limit must be an integer from 1 to 10000, got "ten"' },
    { args: ['--limit', '1e3'], message: '--limit must be an integer from 1 to 10000, got "1e3"' },
    {
      args: ['--before', '9223372036854775808'],
      message: '--before: "9223372036854775808" is not a task id',
    },
    { args: ['--before', 'x'], message: '--before: "x" is not a task id' },
    { args: ['--before', '0'], message: '--before: "0" is not a task id' },
    {
      args: ['--prepared-statements', 'sometimes'],
      message: '--prepared-statements must be on or off, got "sometimes"',
    },
  ])('$args: bad usage, exit 2, one line on stderr, no stack trace', async ({ args, message }) => {
    await badUsage(['tasks', '-q', QUEUE, ...args], message);
  });
});

describe('pgtq task', () => {
  const QUEUE = 'cli_task';
  /** One `key  value` line of the text output: keys padded to the longest, max_attempts. */
  const field = (key: string, value: string) => `${key.padEnd('max_attempts'.length)}  ${value}\n`;
  const at = (date: Date | null | undefined) => date?.toISOString() ?? '';

  it('prints a failed task field by field, then its whole multi-line error', async () => {
    const id = await failedTask(db.queue(QUEUE), 'convert', 'disk full\nwhile writing /tmp/x');
    const stored = await storedTask(id);
    if (!stored?.error) throw new Error(`task ${id} has no error`);
    // the error is the failure's stack: several lines, starting with the message
    expect(stored.error).toMatch(/^Error: disk full\nwhile writing \/tmp\/x\n {4}at /);

    const out = await ok(['task', id]);
    expect(out).toBe(
      field('id', id) +
        field('queue', QUEUE) +
        field('name', 'convert') +
        field('args', '[]') +
        field('state', 'failed') +
        field('priority', '0') +
        field('run_at', at(stored.run_at)) +
        field('attempts', '1') +
        field('max_attempts', '1') +
        field('key', '') +
        field('created_at', at(stored.created_at)) +
        field('started_at', at(stored.started_at)) +
        field('finished_at', at(stored.finished_at)) +
        field('result', '') +
        field('progress', '') +
        field('group_key', '') +
        field('worker_id', `pop:${process.pid}`) +
        `error:\n${stored.error}\n`,
    );
  });

  it('prints a succeeded task with its result and key, and no error section', async () => {
    const q = db.queue(QUEUE);
    const ref = await q.push('resize', [640, { fit: 'cover' }], { key: 'img-1', priority: 3 });
    const task = await q.pop({ names: ['resize'] });
    expect(task?.id).toBe(ref.id);
    await task?.complete({ width: 640, files: ['a.png'] });
    const stored = await storedTask(ref.id);

    const out = await ok(['task', ref.id]);
    expect(out).toContain(field('args', '[640,{"fit":"cover"}]'));
    expect(out).toContain(field('state', 'succeeded'));
    expect(out).toContain(field('priority', '3'));
    expect(out).toContain(field('key', 'img-1'));
    expect(out).toContain(field('finished_at', at(stored?.finished_at)));
    // the result as stored (jsonb orders an object's keys its own way)
    expect(stored?.result).toEqual({ width: 640, files: ['a.png'] });
    expect(out).toContain(field('result', JSON.stringify(stored?.result)));
    expect(out).not.toContain('error:');
  });

  it('--json prints the stored task with every field', async () => {
    const id = await failedTask(db.queue(QUEUE), 'convert', 'line one\nline two');
    const json = JSON.parse(await ok(['task', id, '--json'])) as StoredTask;
    expect(json).toEqual(asJson(await storedTask(id)));
    expect(json).toMatchObject({ id, queue: QUEUE, state: 'failed', attempts: 1 });
    expect(json.error).toMatch(/^Error: line one\nline two\n/);
  });

  it('a pending task shows with empty finished_at and result', async () => {
    const ref = await db.queue(QUEUE).push('later', ['x'], { delayMs: 3_600_000 });
    const out = await ok(['task', ref.id]);
    expect(out).toContain(field('state', 'scheduled'));
    expect(out).toContain(field('finished_at', ''));
    expect(out).toContain(field('result', ''));
  });

  it('an unknown id: exit 1, one line "No task with id …"', async () => {
    for (const extra of [[], ['--json']]) {
      const result = await pgtq(['task', NO_SUCH_ID, ...extra], env);
      expect(result.code, described(result)).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(`pgtq: No task with id ${NO_SUCH_ID}.\n`);
    }
  });

  it.each([
    { args: ['abc'], message: '"abc" is not a task id' },
    { args: ['0'], message: '"0" is not a task id' },
    { args: [], message: 'expected: pgtq task <id> [--json]' },
  ])('task $args: bad usage, exit 2', async ({ args, message }) => {
    await badUsage(['task', ...args], message);
  });
});

describe('pgtq retry', () => {
  const USAGE = 'pgtq retry <id>... | pgtq retry --failed [--name <task>] [--queue <name>]';
  const SKIPPED = 'not retried: not a failed or cancelled task (or its key is pending)';

  it('makes a failed task ready again with no attempts used, keeping its error as last_error', async () => {
    const q = db.queue('cli_retry');
    const id = await failedTask(q, 'flaky', 'first failure');
    const error = (await storedTask(id))?.error;

    expect(await ok(['retry', id])).toBe(`${id} retried\n`);
    expect(await pendingRow(id)).toEqual({
      state: 'ready',
      attempts: 0,
      last_error: error,
      cancel_requested_at: null,
    });
    expect(await db.rows('SELECT 1 FROM :schema.finished_tasks WHERE id = $1', [id])).toEqual([]);
    // and it runs again
    const again = await q.pop({ names: ['flaky'] });
    expect(again?.id).toBe(id);
    expect(again?.attempt).toBe(1);
    await again?.complete();
  });

  it('retries a cancelled task too', async () => {
    const q = db.queue('cli_retry');
    const ref = await q.push('cancelled_one', []);
    expect(await q.cancel([ref.id])).toEqual({ cancelled: [ref.id], cancelRequested: [] });
    expect(await ok(['retry', ref.id])).toBe(`${ref.id} retried\n`);
    expect((await pendingRow(ref.id))?.state).toBe('ready');
  });

  it('a mix with ids that are not failed: retries the failed ones, names the others, exit 1', async () => {
    const q = db.queue('cli_retry');
    const failed = await failedTask(q, 'mixed');
    const pending = (await q.push('mixed_pending', [], { delayMs: 3_600_000 })).id;

    const result = await pgtq(['retry', failed, pending, NO_SUCH_ID], env);
    expect(result.code, described(result)).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${failed} retried\n${pending} ${SKIPPED}\n${NO_SUCH_ID} ${SKIPPED}\n`);
    expect((await pendingRow(failed))?.state).toBe('ready');
    expect((await pendingRow(pending))?.state).toBe('scheduled');

    // --json: the same split
    const other = await failedTask(q, 'mixed_json');
    const json = await pgtq(['retry', other, pending, '--json'], env);
    expect(json.code, described(json)).toBe(1);
    expect(JSON.parse(json.stdout)).toEqual({ retried: [other], skipped: [pending] });
    expect((await pendingRow(other))?.state).toBe('ready');
  });

  it('--failed --name retries only the failed tasks of that name in that queue, and prints how many', async () => {
    const QUEUE = 'cli_retry_failed';
    const q = db.queue(QUEUE);
    const n1 = await failedTask(q, 'n');
    const n2 = await failedTask(q, 'n');
    const m = await failedTask(q, 'm');
    const elsewhere = await failedTask(db.queue('cli_retry_failed_other'), 'n');

    expect(await ok(['retry', '--failed', '--name', 'n', '-q', QUEUE])).toBe('retried 2 failed task(s)\n');
    for (const id of [n1, n2]) expect(await pendingRow(id)).toMatchObject({ state: 'ready', attempts: 0 });
    expect((await storedTask(m))?.state).toBe('failed');
    expect((await storedTask(elsewhere))?.state).toBe('failed');

    // --json: {retried}; nothing on stderr (not a terminal: no progress line)
    expect(JSON.parse(await ok(['retry', '--failed', '-n', 'm', '-q', QUEUE, '--json']))).toEqual({
      retried: 1,
    });
    expect((await pendingRow(m))?.state).toBe('ready');
    expect(JSON.parse(await ok(['retry', '--failed', '-q', QUEUE, '--json']))).toEqual({ retried: 0 });
    expect((await storedTask(elsewhere))?.state).toBe('failed');
  });

  it('ids with --failed, --name without --failed, no ids: exit 2, nothing retried', async () => {
    const id = await failedTask(db.queue('cli_retry_usage'), 'u');
    await badUsage(
      ['retry', id, '--failed', '-q', 'cli_retry_usage'],
      `give ids or --failed, not both: ${USAGE}`,
    );
    await badUsage(['retry', id, '--name', 'u', '-q', 'cli_retry_usage'], '--name goes with --failed');
    await badUsage(['retry', '--name', 'u', '-q', 'cli_retry_usage'], '--name goes with --failed');
    await badUsage(['retry'], `expected: ${USAGE}`);
    await badUsage(['retry', 'abc'], '"abc" is not a task id');
    expect((await storedTask(id))?.state).toBe('failed');
  });
});

describe('pgtq cancel', () => {
  const QUEUE = 'cli_cancel';
  const SKIPPED = 'not cancelled: not pending or running';

  it('cancels a pending task at once, with "cancelled" as its error', async () => {
    const ref = await db.queue(QUEUE).push('p', [1]);
    expect(await ok(['cancel', ref.id])).toBe(`${ref.id} cancelled\n`);
    expect(await storedTask(ref.id)).toMatchObject({ state: 'cancelled', error: 'cancelled' });
    expect(await pendingRow(ref.id)).toBeUndefined();
  });

  it('--reason is stored as the error; a scheduled task is cancelled too', async () => {
    const ref = await db.queue(QUEUE).push('p', [2], { delayMs: 3_600_000 });
    expect(await ok(['cancel', ref.id, '--reason', 'no longer needed'])).toBe(`${ref.id} cancelled\n`);
    expect(await storedTask(ref.id)).toMatchObject({ state: 'cancelled', error: 'no longer needed' });
  });

  it('asks a running task to stop: it stays running with cancel_requested_at set', async () => {
    const id = await runningTask(db.queue(QUEUE), 'r');
    expect((await pendingRow(id))?.cancel_requested_at).toBeNull();

    expect(await ok(['cancel', id])).toBe(`${id} running: asked to stop\n`);
    const row = await pendingRow(id);
    expect(row?.state).toBe('running');
    expect(row?.cancel_requested_at).toBeInstanceOf(Date);
  });

  it('an unknown or finished id: named as not cancelled, exit 1, the others still cancelled', async () => {
    const q = db.queue(QUEUE);
    const done = await failedTask(q, 'finished');
    const pending = (await q.push('p', [3])).id;

    const result = await pgtq(['cancel', done, pending, NO_SUCH_ID], env);
    expect(result.code, described(result)).toBe(1);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${pending} cancelled\n${done} ${SKIPPED}\n${NO_SUCH_ID} ${SKIPPED}\n`);
    expect((await storedTask(done))?.state).toBe('failed');
    expect((await storedTask(pending))?.state).toBe('cancelled');

    const alone = await pgtq(['cancel', NO_SUCH_ID], env);
    expect([alone.code, alone.stdout], described(alone)).toEqual([1, `${NO_SUCH_ID} ${SKIPPED}\n`]);
  });

  it('--json prints {cancelled, cancelRequested, skipped}', async () => {
    const q = db.queue(QUEUE);
    const running = await runningTask(q, 'r_json');
    const pending = (await q.push('p_json', [])).id;

    const result = await pgtq(['cancel', pending, running, NO_SUCH_ID, '--json', '--reason', 'json'], env);
    expect(result.code, described(result)).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      cancelled: [pending],
      cancelRequested: [running],
      skipped: [NO_SUCH_ID],
    });
    expect(await storedTask(pending)).toMatchObject({ state: 'cancelled', error: 'json' });
    expect((await pendingRow(running))?.cancel_requested_at).toBeInstanceOf(Date);

    const clean = await pgtq(['cancel', (await q.push('p_json', [])).id, '--json'], env);
    expect(clean.code, described(clean)).toBe(0);
    expect(JSON.parse(clean.stdout)).toEqual({
      cancelled: [expect.any(String)],
      cancelRequested: [],
      skipped: [],
    });
  });

  it.each([
    { args: [], message: 'expected: pgtq cancel <id>... [--reason <text>]' },
    { args: ['12', 'x'], message: '"x" is not a task id' },
  ])('cancel $args: bad usage, exit 2', async ({ args, message }) => {
    await badUsage(['cancel', ...args], message);
  });
});

describe('pgtq flush', () => {
  const QUEUE = 'cli_flush';
  const OTHER = 'cli_flush_other';

  /** Task ids of a queue by state, read from the database. */
  const byState = async (queue: string) => {
    const rows = await db.rows<{ state: string; ids: string[] }>(
      `SELECT state::text AS state, array_agg(id::text ORDER BY id) AS ids FROM :schema.all_tasks
       WHERE queue = $1 GROUP BY state ORDER BY state::text`,
      [queue],
    );
    return Object.fromEntries(rows.map((row) => [row.state, row.ids]));
  };

  it('deletes the pending tasks of --queue only, with --yes; running tasks, history and other queues stay', async () => {
    const q = db.queue(QUEUE);
    const failed = await failedTask(q, 'f');
    const running = await runningTask(q, 'r');
    const pending = (
      await q.pushMany([
        { name: 'p', args: [1] },
        { name: 'p', args: [2] },
        { name: 'p', args: [3], key: 'k' },
        { name: 'p', args: [4], delayMs: 3_600_000 },
      ])
    ).map((ref) => ref.id);
    const others = (
      await db.queue(OTHER).pushMany([
        { name: 'p', args: [1] },
        { name: 'p', args: [2], delayMs: 3_600_000 },
      ])
    ).map((ref) => ref.id);
    const before = await byState(QUEUE);
    expect(before).toEqual({
      failed: [failed],
      ready: pending.slice(0, 3),
      running: [running],
      scheduled: [pending[3]],
    });
    const othersBefore = await byState(OTHER);

    // no --queue (PGTQ_QUEUE does not count: the queue must be named on the command line)
    await badUsage(['flush', '--yes'], 'name the queue to flush: --queue <name>');
    await badUsage(['flush', '--yes'], 'name the queue to flush: --queue <name>', { PGTQ_QUEUE: QUEUE });
    // no --yes
    await badUsage(
      ['flush', '-q', QUEUE],
      `flush deletes every pending task of queue "${QUEUE}"; add --yes to do it`,
    );
    expect(await byState(QUEUE)).toEqual(before);

    const result = await pgtq(['flush', '--queue', QUEUE, '--yes'], env);
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toBe(`deleted 4 pending task(s) of queue ${QUEUE}\n`);
    // stderr is not a terminal here: no progress line
    expect(result.stderr).toBe('');
    expect(await byState(QUEUE)).toEqual({ failed: [failed], running: [running] });
    expect(await byState(OTHER)).toEqual(othersBefore);
    expect(Object.values(othersBefore).flat().sort()).toEqual([...others].sort());
    // the key of a flushed task is free again
    expect((await q.push('p', [5], { key: 'k' })).inserted).toBe(true);
  });

  it('--json prints {queue, deleted}; an empty queue deletes 0', async () => {
    const q = db.queue(QUEUE);
    await q.pushMany([
      { name: 'p', args: [6] },
      { name: 'p', args: [7] },
    ]);
    const pendingBefore = (await byState(QUEUE)).ready?.length;
    expect(pendingBefore).toBe(3); // these two and the keyed one of the test above

    expect(JSON.parse(await ok(['flush', '-q', QUEUE, '-y', '--json']))).toEqual({
      queue: QUEUE,
      deleted: 3,
    });
    expect((await byState(QUEUE)).ready).toBeUndefined();
    expect(JSON.parse(await ok(['flush', '-q', QUEUE, '-y', '--json']))).toEqual({
      queue: QUEUE,
      deleted: 0,
    });
    expect(await ok(['flush', '-q', 'cli_flush_never_used', '--yes'])).toBe(
      'deleted 0 pending task(s) of queue cli_flush_never_used\n',
    );
  });
});

describe('pgtq workers', () => {
  const QUEUE = 'cli_workers';

  it('lists a running worker and scheduler with kind, queue, id, host and pid; nothing once they stop', async () => {
    const q = db.queue(QUEUE);
    q.handler(async function cli_workers_noop() {});
    const worker = q.worker({ concurrency: 2 });
    const scheduler = q.scheduler();
    try {
      await worker.start();
      await scheduler.start();

      const json = JSON.parse(await ok(['workers', '--json'])) as Record<string, unknown>[];
      // ordered by kind: the scheduler, then the worker
      expect(json).toEqual([
        {
          kind: 'scheduler',
          queue: QUEUE,
          id: scheduler.id,
          hostname: hostname(),
          pid: process.pid,
          running: 0,
          started_at: expect.any(String),
          silent_ms: expect.any(Number),
        },
        {
          kind: 'worker',
          queue: QUEUE,
          id: worker.id,
          hostname: hostname(),
          pid: process.pid,
          running: 0,
          started_at: expect.any(String),
          silent_ms: expect.any(Number),
        },
      ]);
      const stored = await db.rows<{ id: string; started_at: Date }>(
        "SELECT id, date_trunc('second', started_at) AS started_at FROM :schema.processes ORDER BY kind",
      );
      expect(json.map((row) => [row.id, row.started_at])).toEqual(
        stored.map((row) => [row.id, row.started_at.toISOString()]),
      );

      const { columns, rows } = parseTable(await ok(['workers']));
      expect(columns).toEqual([
        'kind',
        'queue',
        'id',
        'hostname',
        'pid',
        'running',
        'started_at',
        'silent_ms',
      ]);
      expect(
        rows.map(({ kind, queue, id, hostname, pid, running }) => ({
          kind,
          queue,
          id,
          hostname,
          pid,
          running,
        })),
      ).toEqual([
        {
          kind: 'scheduler',
          queue: QUEUE,
          id: scheduler.id,
          hostname: hostname(),
          pid: String(process.pid),
          running: '0',
        },
        {
          kind: 'worker',
          queue: QUEUE,
          id: worker.id,
          hostname: hostname(),
          pid: String(process.pid),
          running: '0',
        },
      ]);
      expect(rows.map((row) => row.started_at)).toEqual(stored.map((row) => row.started_at.toISOString()));
      for (const row of rows) expect(row.silent_ms).toMatch(/^\d+$/);
    } finally {
      await worker.stop();
      await scheduler.stop();
    }

    expect(JSON.parse(await ok(['workers', '--json']))).toEqual([]);
    expect(await ok(['workers'])).toBe('(none)\n');
  });

  it('counts the tasks a worker is running', async () => {
    const q = db.queue('cli_workers_busy');
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    q.handler(async function cli_workers_wait() {
      started += 1;
      await gate;
    });
    const worker = q.worker({ concurrency: 2 });
    try {
      await worker.start();
      await q.pushMany([
        { name: 'cli_workers_wait', args: [] },
        { name: 'cli_workers_wait', args: [] },
      ]);
      await waitFor(() => started === 2);
      const [row] = JSON.parse(await ok(['workers', '--json'])) as { id: string; running: number }[];
      expect(row).toMatchObject({ id: worker.id, running: 2 });
    } finally {
      release();
      await worker.stop();
    }
    expect(JSON.parse(await ok(['workers', '--json']))).toEqual([]);
  });
});

describe('pgtq stats --queue', () => {
  it('shows only that queue’s rows, in text and JSON', async () => {
    await db.queue('cli_stats_only_a').pushMany([
      { name: 's', args: [1] },
      { name: 's', args: [2] },
      { name: 's', args: [3], delayMs: 3_600_000 },
    ]);
    await db.queue('cli_stats_only_b').push('s', [4]);
    // the other queues of this file have rows too: without --queue they all show
    const all = JSON.parse(await ok(['stats', '--json'])) as { queue: string }[];
    expect(new Set(all.map((row) => row.queue)).size).toBeGreaterThan(1);

    const json = JSON.parse(await ok(['stats', '--queue', 'cli_stats_only_a', '--json'])) as {
      queue: string;
      state: string;
      count: number;
    }[];
    expect(json.map(({ queue, state, count }) => ({ queue, state, count }))).toEqual([
      { queue: 'cli_stats_only_a', state: 'scheduled', count: 1 },
      { queue: 'cli_stats_only_a', state: 'ready', count: 2 },
    ]);

    const { columns, rows } = parseTable(await ok(['stats', '-q', 'cli_stats_only_a']));
    expect(columns).toEqual(['queue', 'state', 'count', 'oldest_age']);
    expect(rows.map(({ queue, state, count }) => [queue, state, count])).toEqual([
      ['cli_stats_only_a', 'scheduled', '1'],
      ['cli_stats_only_a', 'ready', '2'],
    ]);
    expect(await ok(['stats', '-q', 'cli_stats_no_such_queue'])).toBe('(none)\n');
  });
});

describe('pgtq pause, pgtq resume', () => {
  it('pause a task name: claims skip it, stats shows it paused and its group held; resume lets it run', async () => {
    const q = db.queue('cli_pause');
    await q.pushMany([
      { name: 'mail', args: [], group: 'tenant:1' },
      { name: 'other', args: [] },
    ]);
    expect(await ok(['pause', '--queue', 'cli_pause', '--name', 'mail'])).toBe(
      'paused: task mail of queue cli_pause\n',
    );
    expect(await ok(['pause', '-q', 'cli_pause', '-n', 'mail'])).toBe(
      'already paused: task mail of queue cli_pause\n',
    );
    expect((await q.pop({ leaseMs: LONG_LEASE_MS }))?.name).toBe('other');
    expect(await q.pop()).toBeNull();

    const stats = await ok(['stats', '-q', 'cli_pause']);
    const [, paused = '', held = ''] = stats.split('\n\n');
    expect(parseTable(paused.replace(/^paused\n/, '')).rows).toMatchObject([
      { queue: 'cli_pause', name: 'mail' },
    ]);
    expect(parseTable(held.replace(/^held back by flow control\n/, '')).rows).toMatchObject([
      { queue: 'cli_pause', name: 'mail', group: 'tenant:1', ready: '1', held_by: 'paused' },
    ]);

    expect(JSON.parse(await ok(['resume', '-q', 'cli_pause', '-n', 'mail', '--json']))).toEqual({
      queue: 'cli_pause',
      name: 'mail',
      changed: true,
    });
    expect((await q.pop({ leaseMs: LONG_LEASE_MS }))?.name).toBe('mail');
    expect(await ok(['stats', '-q', 'cli_pause'])).not.toMatch(/paused|held back/);
  });

  it('pause a whole queue, and resume it', async () => {
    const q = db.queue('cli_pause_all');
    await q.push('job', []);
    expect(await ok(['pause', '-q', 'cli_pause_all'])).toBe('paused: queue cli_pause_all\n');
    expect(await q.pop()).toBeNull();
    expect(await ok(['resume', '-q', 'cli_pause_all'])).toBe('resumed: queue cli_pause_all\n');
    expect(await ok(['resume', '-q', 'cli_pause_all'])).toBe('already running: queue cli_pause_all\n');
    expect(await q.pop({ leaseMs: LONG_LEASE_MS })).not.toBeNull();
  });

  it('without --queue: a usage error', async () => {
    await badUsage(['pause'], 'name the queue to pause: --queue <name>');
  });
});

describe('pgtq schedules', () => {
  it('lists the schedules of every queue with their next fire, or of one queue', async () => {
    const reports = db.queue('cli_schedules_reports');
    await reports.schedule('nightly', '0 3 * * *', 'build_report', ['daily']);
    await db.queue('cli_schedules_mail').schedule('digest', '*/5 * * * *', 'send_digest');
    const before = await ok(['schedules', '-q', 'cli_schedules_reports']);
    expect(before).toMatch(/nightly .* when a scheduler runs/);
    const scheduler = reports.scheduler();
    await scheduler.start();
    type Listed = { name: string; queue: string; nextFireAt: string | null };
    const listed = async () =>
      (JSON.parse(await ok(['schedules', '--json'])) as Listed[]).filter((s) =>
        s.queue.startsWith('cli_schedules_'),
      );
    try {
      await waitFor(async () => (await listed()).every((s) => s.nextFireAt !== null), { timeoutMs: 15_000 });
    } finally {
      await scheduler.stop();
    }
    const ours = await listed();
    expect(ours.map((s) => [s.name, s.queue])).toEqual([
      ['digest', 'cli_schedules_mail'],
      ['nightly', 'cli_schedules_reports'],
    ]);
    for (const s of ours) expect(new Date(s.nextFireAt ?? 0).getTime()).toBeGreaterThan(Date.now());
    const text = await ok(['schedules', '-q', 'cli_schedules_reports']);
    expect(lines(text)[0]).toMatch(/^name\s+queue\s+cron\s+tz\s+task\s+next_fire_at\s+next_in/);
    expect(text).toContain('nightly');
    expect(text).not.toContain('digest');
  });
});

describe('pgtq push of a name no live worker handles', () => {
  it('warns on stderr, and still pushes; says nothing when a worker handles it or none is up', async () => {
    const q = db.queue('cli_push_warn');
    q.handler(async function resize() {});
    const worker = q.worker({ concurrency: 1 });
    await worker.start();
    try {
      const typo = await pgtq(['push', 'rezise', '-q', 'cli_push_warn'], env);
      expect(typo.code, described(typo)).toBe(0);
      expect(lines(typo.stderr)).toEqual([
        expect.stringMatching(
          /^pgtq: warning: none of the 1 live worker\(s\) of queue "cli_push_warn" has a handler named "rezise"/,
        ),
      ]);
      expect(await storedTask(typo.stdout.trim())).toMatchObject({ name: 'rezise', state: 'ready' });
      const known = await pgtq(['push', 'resize', '-q', 'cli_push_warn'], env);
      expect([known.code, known.stderr]).toEqual([0, '']);
    } finally {
      await worker.stop();
    }
    const nobody = await pgtq(['push', 'whatever', '-q', 'cli_push_nobody'], env);
    expect([nobody.code, nobody.stderr]).toEqual([0, '']);
  });
});

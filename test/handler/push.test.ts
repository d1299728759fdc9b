import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  NotJsonError,
  PayloadTooLargeError,
  PgTq,
  UnknownHandlerError,
  ValidationError,
} from '../../src/index.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_push');

async function countTasks(queue: string): Promise<number> {
  const [row] = await db.rows<{ n: string }>('SELECT count(*) AS n FROM :schema.tasks WHERE queue = $1', [
    queue,
  ]);
  return Number(row?.n);
}

describe('push in the caller’s transaction', () => {
  const q = db.queue('tx');
  const sum = q.handler({ name: 'sum_task', args: z.tuple([z.number(), z.number()]) }, async (a, b) => a + b);

  it('stores nothing when the transaction rolls back', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const ref = await sum.with({ client }).push(2, 3);
      expect(ref.inserted).toBe(true);
      await client.query('ROLLBACK');
      expect(await db.rows('SELECT 1 FROM :schema.all_tasks WHERE id = $1', [ref.id])).toHaveLength(0);
    } finally {
      client.release();
    }
  });

  it('stores the task when the transaction commits, and not before', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const ref = await q.push('sum_task', [2, 3], { client });
      expect(await db.rows('SELECT 1 FROM :schema.tasks WHERE id = $1', [ref.id])).toHaveLength(0);
      await client.query('COMMIT');
      const [task] = await db.rows('SELECT name, args, state FROM :schema.tasks WHERE id = $1', [ref.id]);
      expect(task).toEqual({ name: 'sum_task', args: [2, 3], state: 'ready' });
    } finally {
      client.release();
    }
  });

  it('a handler is still a function', async () => {
    await expect(sum(2, 3)).resolves.toBe(5);
  });
});

describe('pushMany', () => {
  it('stores 10,000 tasks in one call, in order', async () => {
    const q = db.queue('many');
    const noop = q.handler(async function noop(_i: number) {});
    const refs = await noop.pushMany(Array.from({ length: 10_000 }, (_, i) => [i] as [number]));
    expect(refs).toHaveLength(10_000);
    expect(await countTasks('many')).toBe(10_000);
    const [first] = await db.rows('SELECT args FROM :schema.tasks WHERE id = $1', [refs[0]?.id]);
    const [last] = await db.rows('SELECT args FROM :schema.tasks WHERE id = $1', [refs[9_999]?.id]);
    expect([first?.args, last?.args]).toEqual([[0], [9_999]]);
  });

  it('pushes tasks of several names with options of their own', async () => {
    const q = db.queue('mixed');
    const refs = await q.pushMany([
      { name: 'a', args: [1], priority: 5 },
      { name: 'b', args: [], key: 'only-once' },
      { name: 'b', args: [], key: 'only-once' },
    ]);
    expect(refs.map((ref) => ref.inserted)).toEqual([true, true, false]);
    expect(refs[2]?.id).toBe(refs[1]?.id);
    expect(await countTasks('mixed')).toBe(2);
  });

  it('an empty list stores nothing', async () => {
    await expect(db.queue('empty').pushMany([])).resolves.toEqual([]);
  });
});

describe('push options', () => {
  it('a key dedupes while the first task is pending, and returns the pending task', async () => {
    const q = db.queue('keys');
    const first = await q.push('mail', ['a'], { key: 'user:42' });
    const second = await q.push('mail', ['b'], { key: 'user:42' });
    expect(second).toMatchObject({ id: first.id, inserted: false });
    expect(await countTasks('keys')).toBe(1);
    // Once claimed, the key is free again: a new push makes a new task.
    const task = await q.pop();
    expect(task?.id).toBe(first.id);
    const third = await q.push('mail', ['c'], { key: 'user:42' });
    expect(third.inserted).toBe(true);
    expect(third.id).not.toBe(first.id);
  });

  it.each([
    ['push', (q: PgTq) => q.push('mail', ['b'], { key: 'race' })],
    ['pushMany', async (q: PgTq) => (await q.pushMany([{ name: 'mail', args: ['b'], key: 'race' }]))[0]],
  ])(
    '%s: a key pushed while another transaction pushes it returns that task once it commits',
    async (how, pushAgain) => {
      const q = db.queue(`race-${how}`);
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        const first = await q.push('mail', ['a'], { key: 'race', client });
        const second = pushAgain(q); // waits on the uncommitted key
        await new Promise((resolve) => setTimeout(resolve, 100));
        await client.query('COMMIT');
        expect(await second).toMatchObject({ id: first.id, inserted: false });
        expect(await countTasks(`race-${how}`)).toBe(1);
      } finally {
        client.release();
      }
    },
  );

  it('claims by priority (higher first), then by age', async () => {
    const q = db.queue('priorities');
    await q.push('t', ['low'], { priority: -1 });
    await q.push('t', ['normal-1']);
    await q.push('t', ['high'], { priority: 10 });
    await q.push('t', ['normal-2']);
    const order: unknown[] = [];
    for (let task = await q.pop(); task; task = await q.pop()) {
      order.push(task.args[0]);
      await task.complete();
    }
    expect(order).toEqual(['high', 'normal-1', 'normal-2', 'low']);
  });

  it('a delayed task is scheduled and not claimable; runAt and delayMs add up', async () => {
    const q = db.queue('delays');
    const delayed = await q.push('t', [], { delayMs: 60_000 });
    const runAt = new Date(Date.now() + 3_600_000);
    const later = await q.push('t', [], { runAt, delayMs: 60_000, maxAttempts: 3 });
    const [d] = await db.rows<{ state: string; due_in: number }>(
      'SELECT state, extract(epoch FROM run_at - now()) AS due_in FROM :schema.tasks WHERE id = $1',
      [delayed.id],
    );
    expect(d?.state).toBe('scheduled');
    expect(Number(d?.due_in)).toBeGreaterThan(59);
    expect(Number(d?.due_in)).toBeLessThanOrEqual(60);
    const [l] = await db.rows<{ run_at: Date; max_attempts: number }>(
      'SELECT run_at, max_attempts FROM :schema.tasks WHERE id = $1',
      [later.id],
    );
    expect(l?.run_at.getTime()).toBe(runAt.getTime() + 60_000);
    expect(l?.max_attempts).toBe(3);
    expect(await q.pop()).toBeNull();
  });
});

describe('bad input gets a typed error and stores nothing', () => {
  const q = db.queue('bad');
  const typed = q.handler({ name: 'typed', args: z.tuple([z.string().email()]) }, async (_email) => {});
  const loose = q.handler(async function loose(..._args: unknown[]) {});
  const circular: Record<string, unknown> = {};
  circular.self = circular;

  it.each([
    ['a function', [() => 1], 'args[0]: a function is not JSON'],
    ['a BigInt', [10n], 'args[0]: a BigInt is not JSON'],
    ['a circular object', [circular], 'args[0].self: a circular reference is not JSON'],
    ['undefined in an array', [[1, undefined]], 'args[0][1]: undefined is not JSON'],
    ['NaN', [{ n: Number.NaN }], 'args[0].n: NaN is not a JSON number'],
    ['a Map', [new Map()], 'args[0]: a Map is not JSON'],
  ])('arguments holding %s', async (_, args, message) => {
    const error = await loose.push(...args).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotJsonError);
    expect((error as NotJsonError).code).toBe('ERR_PGTQ_NOT_JSON');
    expect((error as Error).message).toContain(message);
  });

  it('arguments failing the handler’s schema', async () => {
    await expect(typed.push('not-an-email')).rejects.toThrow(ValidationError);
    await expect(q.push('typed', [1, 2])).rejects.toThrow(
      /typed: .*args\[0\]: Invalid input: expected string/,
    );
  });

  it('an unknown task name on a queue that knows its handlers, with a suggestion', async () => {
    const error = await q.push('typd', ['a@b.c']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownHandlerError);
    expect((error as Error).message).toContain('did you mean "typed"');
  });

  it('bad push options, with a suggestion for a misspelt one', async () => {
    expect(() => loose.with({ priority: 1.5 })).toThrow(ValidationError);
    expect(() => loose.with({ delayMs: -1 })).toThrow(ValidationError);
    expect(() => loose.with({ runAt: new Date('nope') })).toThrow(ValidationError);
    await expect(q.push('loose', [], { priority: 2 ** 40 })).rejects.toThrow(ValidationError);
    // @ts-expect-error: misspelt on purpose
    expect(() => loose.with({ dealyMs: 5 })).toThrow(/unknown option "dealyMs" \(did you mean "delayMs"\?\)/);
    await expect(loose.with({ key: 'k' }).pushMany([[1], [2]])).rejects.toThrow(/a key names one task/);
  });

  it('arguments that are not an array', async () => {
    // @ts-expect-error: not an array on purpose
    await expect(q.push('loose', { a: 1 })).rejects.toThrow(/arguments must be an array/);
  });

  it('one bad task in pushMany stores none of them', async () => {
    await expect(
      q.pushMany([
        { name: 'loose', args: [1] },
        { name: 'loose', args: [2n] },
      ]),
    ).rejects.toThrow(/tasks\[1\]\.args\[0\]: a BigInt/);
    expect(await countTasks('bad')).toBe(0);
  });
});

describe('text PostgreSQL cannot store gets a NotJsonError, not a database error', () => {
  const q = db.queue('text');
  const loose = q.handler(async function loose(..._args: unknown[]) {});

  it.each([
    ['U+0000 in a string', [{ name: 'a\u0000b' }], 'args[0].name', /the string holds U\+0000 at index 1/],
    ['a lone high surrogate', [{ name: 'ab\uD800' }], 'args[0].name', /lone surrogate at index 2/],
    ['a lone low surrogate', [['x', '\uDC00y']], 'args[0][1]', /lone surrogate at index 0/],
    ['swapped halves of a pair', ['\uDE00\uD83D'], 'args[0]', /lone surrogate at index 0/],
    ['U+0000 in a key', [{ ok: { 'na\u0000me': 1 } }], 'args[0].ok', /the key "na\\u0000me" holds U\+0000/],
    ['a lone surrogate in a key', [{ '\uD800': 1 }], 'args[0]', /the key "\\ud800" holds a lone surrogate/],
  ])('%s', async (_, args, path, message) => {
    const error = await loose.push(...args).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotJsonError);
    expect((error as NotJsonError).path).toBe(`loose.${path}`);
    expect((error as Error).message).toMatch(message);
    expect(await countTasks('text')).toBe(0);
  });

  it('the same through q.push and pushMany, which store none of the tasks', async () => {
    await expect(q.push('loose', ['\u0000'])).rejects.toThrow(/loose\.args\[0\]: the string holds U\+0000/);
    await expect(
      q.pushMany([
        { name: 'loose', args: ['fine'] },
        { name: 'loose', args: [{ deep: ['\uDBFF'] }] },
      ]),
    ).rejects.toThrow(/tasks\[1\]\.args\[0\]\.deep\[0\]: the string holds a lone surrogate/);
    expect(await countTasks('text')).toBe(0);
  });

  it('U+0000 or a lone surrogate in a task name or key is a ValidationError', async () => {
    await expect(db.queue('text-names').push('a\u0000b', [])).rejects.toThrow(ValidationError);
    await expect(loose.with({ key: 'k\uD800' }).push()).rejects.toThrow(
      /loose: the key "k\\ud800" holds a lone surrogate/,
    );
    expect(await countTasks('text')).toBe(0);
    expect(await countTasks('text-names')).toBe(0);
  });

  it('surrogate pairs (emoji, rare CJK) and other control characters are stored and read back unchanged', async () => {
    const args = [{ 'key 😀': 'smile 😀, 𠜎, \u0001\u001f\uFFFF', nested: ['\uD83D\uDE00'] }];
    const ref = await loose.push(...args);
    const [row] = await db.rows('SELECT args FROM :schema.tasks WHERE id = $1', [ref.id]);
    expect(row?.args).toEqual(args);
    const many = await q.pushMany([{ name: 'loose', args }]);
    expect((await q.getTask(many[0]?.id as string)).args).toEqual(args);
    await db.rows('DELETE FROM :schema.tasks WHERE queue = $1', ['text']);
  });
});

describe('arguments larger than maxArgsBytes get a PayloadTooLargeError', () => {
  const MiB = 1_048_576;
  /** Arguments of `bytes` bytes of JSON: `["xx…x<char>"]`. */
  const ofBytes = (bytes: number, char = 'x') => {
    const charBytes = Buffer.byteLength(JSON.stringify(char)) - 2;
    return ['x'.repeat(bytes - 4 - charBytes) + char];
  };

  it('by default 1 MiB of UTF-8 JSON is allowed and a byte more is not', async () => {
    const q = db.queue('size-default');
    const big = q.handler(async function big(_text: string) {});
    const ref = await big.push(...(ofBytes(MiB, 'é') as [string]));
    expect((await q.getTask(ref.id)).args).toEqual(ofBytes(MiB, 'é'));
    const error = await big.push(...(ofBytes(MiB + 1) as [string])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadTooLargeError);
    expect(error).toMatchObject({ code: 'ERR_PGTQ_TOO_LARGE', bytes: MiB + 1, limit: MiB });
    expect((error as Error).message).toBe(
      `big.args: ${MiB + 1} bytes of JSON, over the limit of ${MiB} bytes (the maxArgsBytes option)`,
    );
    expect(await countTasks('size-default')).toBe(1);
  });

  it('counts bytes of UTF-8, not characters', async () => {
    const q = new PgTq('size-utf8', { connectionString: db.url, schema: db.schema, maxArgsBytes: 100 });
    try {
      // 30 three-byte characters: 34 characters of JSON, 94 bytes.
      await expect(q.push('t', ['€'.repeat(30)])).resolves.toMatchObject({ inserted: true });
      // 33 of them: 37 characters, 103 bytes.
      await expect(q.push('t', ['€'.repeat(33)])).rejects.toMatchObject({ bytes: 103, limit: 100 });
      // An emoji is two UTF-16 units and four bytes: 54 characters, 104 bytes.
      await expect(q.push('t', ['😀'.repeat(25)])).rejects.toMatchObject({ bytes: 104 });
      expect(await countTasks('size-utf8')).toBe(1);
    } finally {
      await q.close();
    }
  });

  it('a custom limit applies to push, handler.push, pushMany and handler.pushMany; the whole call stores nothing', async () => {
    const q = new PgTq('size-custom', { connectionString: db.url, schema: db.schema, maxArgsBytes: 1000 });
    try {
      const h = q.handler(async function sized(_text: string) {});
      await expect(h.push(...(ofBytes(1000) as [string]))).resolves.toMatchObject({ inserted: true });
      await expect(h.push(...(ofBytes(1001) as [string]))).rejects.toThrow(
        'sized.args: 1001 bytes of JSON, over the limit of 1000 bytes (the maxArgsBytes option)',
      );
      await expect(q.push('sized', ofBytes(1001))).rejects.toThrow(PayloadTooLargeError);
      await expect(
        q.pushMany([
          { name: 'sized', args: ['small'] },
          { name: 'sized', args: ofBytes(2000) },
        ]),
      ).rejects.toThrow(/^tasks\[1\]\.args of sized: 2000 bytes of JSON, over the limit of 1000 bytes/);
      await expect(h.pushMany([['small'], ofBytes(1001) as [string]])).rejects.toThrow(
        /^tasks\[1\]\.args of sized: 1001 bytes/,
      );
      expect(await countTasks('size-custom')).toBe(1);
      // Arguments near the limit, whose JSON push writes to count it, are stored as pushed.
      const near = ofBytes(999, '"') as [string];
      const refs = await q.pushMany([
        { name: 'sized', args: ['small'], priority: 2 },
        { name: 'sized', args: near, key: 'near' },
      ]);
      const stored = await Promise.all(refs.map((ref) => q.getTask(ref.id)));
      expect(stored.map(({ args, priority, key }) => ({ args, priority, key }))).toEqual([
        { args: ['small'], priority: 2, key: null },
        { args: near, priority: 0, key: 'near' },
      ]);
    } finally {
      await q.close();
    }
  });

  it.each([
    [0, /maxArgsBytes: Too small/],
    [1.5, /maxArgsBytes: Invalid input: expected int/],
    [2 ** 30, /maxArgsBytes: Too big/],
  ])('maxArgsBytes %s is a ConfigError', (maxArgsBytes, message) => {
    expect(() => new PgTq('size-bad', { schema: db.schema, maxArgsBytes })).toThrow(message);
  });
});

describe('push from SQL', () => {
  it('pgtq.push stores a task, notifies, and honours keys', async () => {
    const q = db.queue('sql');
    const [{ id } = { id: '' }] = await db.rows<{ id: string }>(
      "SELECT :schema.push('sql', 'sum_task', '[2,3]'::jsonb, priority => 3, key => 'k') AS id",
    );
    const [again] = await db.rows<{ id: string }>(
      "SELECT :schema.push('sql', 'sum_task', '[9,9]'::jsonb, key => 'k') AS id",
    );
    expect(again?.id).toBe(id);
    const task = await q.pop();
    expect(task).toMatchObject({ id, name: 'sum_task', args: [2, 3], priority: 3, attempt: 1 });
  });

  it('rejects arguments that are not a JSON array', async () => {
    await expect(db.rows(`SELECT :schema.push('sql', 'x', '{"a":1}'::jsonb)`)).rejects.toMatchObject({
      code: '23514',
    });
  });
});

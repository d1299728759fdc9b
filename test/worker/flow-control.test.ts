import { describe, expect, it } from 'vitest';
import { renderSql } from '../../src/db/sql-files.js';
import { ConfigError, type PgTq, ValidationError } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { useServices } from '../helpers/services.js';

// Flow control (migrations/1763800000006_flow_control.sql, 1763800000007_flow_turns.sql)
// through pop(), workers and SQL, in one process. test/e2e/flow-control.test.ts
// runs it across processes.
const db = await useTestSchema('pgtq_flow');
const services = useServices();

const limit = (queue: string, name: string, concurrency: number | null, rate: string | null = null) =>
  db.rows(
    `SELECT :schema.set_flow_limits($1, $2, $3::integer, ${rate ? "split_part($4, '/', 1)::integer, split_part($4, '/', 2)::interval" : 'NULL, NULL'})`,
    rate ? [queue, name, concurrency, rate] : [queue, name, concurrency],
  );
/** Pops one at a time until nothing more is allowed (concurrent pops skip a group another is taking from). */
const popEach = async (q: PgTq, times: number) => {
  const tasks = [];
  for (let i = 0; i < times; i++) {
    const task = await q.pop({ leaseMs: 60_000 });
    if (task) tasks.push(task);
  }
  return tasks;
};
const popAll = async (q: PgTq, times: number) =>
  (await Promise.all(Array.from({ length: times }, () => q.pop({ leaseMs: 60_000 })))).filter(
    (t) => t !== null,
  );

describe('groupConcurrency', () => {
  it('ten claimers racing for one free slot of a group: exactly one wins; the other group is not held back', async () => {
    const q = db.queue('race');
    await limit('race', 'sync', 1);
    await q.pushMany([
      ...Array.from({ length: 5 }, (_, n) => ({ name: 'sync', args: [n], group: 'tenant:1' })),
      { name: 'sync', args: ['other'], group: 'tenant:2' },
    ]);
    const claimed = await popAll(q, 10);
    expect(claimed.map((t) => t.group).sort()).toEqual(['tenant:1', 'tenant:2']);
    // Held back, not failed: the waiting tasks spent no attempt.
    const waiting = await db.rows<{ attempts: number; state: string }>(
      "SELECT attempts, state::text FROM :schema.tasks WHERE queue = 'race' AND state = 'ready'",
    );
    expect(waiting).toEqual(Array(4).fill({ attempts: 0, state: 'ready' }));
    const [status] = await db.rows(
      "SELECT ready::int, running::int, held_by FROM :schema.flow_status WHERE queue = 'race' AND group_key = 'tenant:1'",
    );
    expect(status).toEqual({ ready: 4, running: 1, held_by: 'group_concurrency' });
    // Finishing frees the slot.
    await claimed.find((t) => t.group === 'tenant:1')?.complete();
    expect((await popAll(q, 3)).map((t) => t.group)).toEqual(['tenant:1']);
  });

  it('a rescued task frees its slot', async () => {
    const q = db.queue('rescue');
    await limit('rescue', 'sync', 1);
    await q.pushMany([1, 2].map((n) => ({ name: 'sync', args: [n], group: 'g' })));
    expect(await q.pop({ leaseMs: 50 })).not.toBeNull();
    expect(await q.pop()).toBeNull();
    await new Promise((resolve) => setTimeout(resolve, 80));
    const scheduler = q.scheduler();
    expect(await scheduler.rescuer.runOnce()).toMatchObject({ retried: 1 });
    const next = await q.pop();
    expect(next?.args).toEqual([1]); // the rescued one, first again by age
    expect(await q.pop()).toBeNull();
  });

  it('a worker runs at most groupConcurrency per group and stores the limit itself', async () => {
    const q = db.queue('worker-limit');
    let running = 0;
    let most = 0;
    const sync = q.handler({ name: 'sync', groupConcurrency: 2 }, async (_n: number) => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running--;
    });
    await services.start(q.worker({ concurrency: 10 }));
    await Promise.all(Array.from({ length: 12 }, (_, n) => sync.with({ group: 'one' }).push(n)));
    await waitFor(async () => (await q.length()) === 0 && running === 0, { timeoutMs: 20_000 });
    expect(most).toBe(2);
    const [stored] = await db.rows(
      "SELECT group_concurrency FROM :schema.flow_limits WHERE queue = 'worker-limit' AND name = 'sync'",
    );
    expect(stored).toEqual({ group_concurrency: 2 });
  });

  it("claim_flow's previous signature still claims, within the limits, for workers not yet upgraded", async () => {
    const q = db.queue('previous');
    await limit('previous', 'sync', 2);
    await q.pushMany(Array.from({ length: 5 }, (_, n) => ({ name: 'sync', args: [n], group: 'g' })));
    const rows = await db.rows<{ id: string | null }>(
      "SELECT id FROM :schema.claim_flow('previous', NULL, 5, gen_random_uuid(), 60000, 'old-worker')",
    );
    expect(rows.filter((row) => row.id !== null)).toHaveLength(2);
  });

  it('tasks pushed before their name had limits join the group "" and are limited too', async () => {
    const q = db.queue('late-limit');
    await q.pushMany([1, 2, 3].map((n) => ({ name: 'sync', args: [n] })));
    await limit('late-limit', 'sync', 1);
    await db.rows("SELECT :schema.set_flow_limits('late-limit', 'sync', NULL, 1, interval '1 hour')");
    expect((await popAll(q, 3)).map((t) => t.group)).toEqual(['']);
  });
});

describe('rateLimit', () => {
  it('starts at most `limit` per period, fleet-wide, and the next only once the period has passed', async () => {
    const q = db.queue('rate');
    await limit('rate', 'call', null, '3/300 ms');
    await q.pushMany(Array.from({ length: 5 }, (_, n) => ({ name: 'call', args: [n] })));
    const first = await popEach(q, 5);
    expect(first).toHaveLength(3);
    for (const task of first) await task.complete();
    expect(await q.pop()).toBeNull(); // finished, but started within the period
    const [status] = await db.rows(
      "SELECT held_by, recent_starts::int FROM :schema.flow_status WHERE queue = 'rate'",
    );
    expect(status).toEqual({ held_by: 'rate_limit', recent_starts: 3 });
    // Each slot frees when its start leaves the window: the other two, then nothing more.
    let second = 0;
    await waitFor(
      async () => {
        second += (await popEach(q, 5)).length;
        return second >= 2;
      },
      { timeoutMs: 2_000 },
    );
    expect(second).toBe(2);
    expect(await q.length()).toBe(0);
  });

  it('claims ahead of the free slots while the rate has room, each task to start within its hold; near the limit, only for free slots', async () => {
    const q = db.queue('ahead');
    await limit('ahead', 'call', null, '100/10 s');
    await q.pushMany(Array.from({ length: 120 }, (_, n) => ({ name: 'call', args: [n] })));
    /** Claims, and says how long the claim took as the client saw it. */
    const claim = async (wanted: number, free: number) => {
      const sent = performance.now();
      const { rows } = await db.pool.query<{ start_within_ms: number }>(
        `SELECT start_within_ms FROM "${db.schema}".claim_flow('ahead', NULL, $1, $2, 300, gen_random_uuid(), 60000, 'w')
         WHERE id IS NOT NULL`,
        [wanted, free],
      );
      return { within: rows.map((t) => t.start_within_ms), tookMs: performance.now() - sent };
    };
    // Each within its hold, plus no more than the claim took before its clock: a
    // worker counts from when it sent the claim.
    const ahead = await claim(20, 2);
    expect(ahead.within).toHaveLength(20);
    for (const ms of ahead.within) expect(ms - 300).toBeGreaterThanOrEqual(0);
    for (const ms of ahead.within) expect(ms - 300).toBeLessThanOrEqual(ahead.tookMs);
    // Counted until the period has passed after the last moment they may start.
    const [entry] = await db.rows<{ ends_after_ms: number }>(
      `SELECT (extract(epoch FROM l.rate_starts[1] - t.started_at) * 1000)::float8 AS ends_after_ms
       FROM :schema.flow_limits AS l JOIN :schema.tasks AS t ON t.queue = l.queue AND t.state = 'running'
       WHERE l.queue = 'ahead' LIMIT 1`,
    );
    expect(entry?.ends_after_ms).toBeGreaterThanOrEqual(300);
    // 80 left in the window: not room for 90, so only the 3 free slots, to start
    // at once, within a tenth of the hold (a start is never quite at once).
    const atOnce = await claim(90, 3);
    expect(atOnce.within).toHaveLength(3);
    for (const ms of atOnce.within) expect(ms - 30).toBeGreaterThanOrEqual(0);
    for (const ms of atOnce.within) expect(ms - 30).toBeLessThanOrEqual(atOnce.tookMs);
    // A claim that waits for the rate's lock has that wait added to the hold.
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT FROM "${db.schema}".flow_limits WHERE queue = 'ahead' FOR UPDATE`);
      const waiting = claim(90, 5);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await holder.query('COMMIT');
      const waited = await waiting;
      expect(waited.within).toHaveLength(5);
      for (const ms of waited.within) expect(ms - 30).toBeGreaterThanOrEqual(100);
      for (const ms of waited.within) expect(ms - 30).toBeLessThanOrEqual(waited.tookMs);
    } finally {
      holder.release();
    }
    expect((await claim(200, 200)).within).toHaveLength(72);
    expect((await claim(10, 10)).within).toHaveLength(0);
  });

  it('a task claimed ahead that cannot start within its hold goes back to ready, its attempt not spent', async () => {
    const q = db.queue('hold');
    const started: string[] = [];
    q.handler({ name: 'call', rateLimit: { limit: 10_000, periodMs: 100 } }, async (kind: string) => {
      started.push(kind);
      if (kind === 'slow') await new Promise((resolve) => setTimeout(resolve, 400));
    });
    const released: string[] = [];
    const release = q.statements.releaseMany.bind(q.statements);
    q.statements.releaseMany = (client, held) => {
      released.push(...held.map((task) => task.id));
      return release(client, held);
    };
    await services.start(q.worker({ concurrency: 1 }));
    // Short tasks first: at their pace, the worker claims ahead.
    await q.pushMany(Array.from({ length: 30 }, () => ({ name: 'call', args: ['short'] })));
    await waitFor(async () => started.length === 30, { timeoutMs: 10_000 });
    // One holds the only slot for 400 ms; those claimed with it may wait 100 ms (the period) at most.
    await q.pushMany(['slow', 'after', 'after', 'after'].map((kind) => ({ name: 'call', args: [kind] })));
    const history = () =>
      db.rows<{ attempts: number; state: string }>(
        "SELECT attempts, state::text FROM :schema.finished_tasks WHERE queue = 'hold'",
      );
    await waitFor(async () => (await history()).length === 34, { timeoutMs: 10_000 });
    expect(started).toHaveLength(34);
    expect(released.length).toBeGreaterThan(0);
    expect((await history()).every((task) => task.attempts === 1 && task.state === 'succeeded')).toBe(true);
  });

  it('per group: each group has its own budget', async () => {
    const q = db.queue('rate-group');
    await db.rows("SELECT :schema.set_flow_limits('rate-group', 'report', NULL, 1, interval '1 hour', true)");
    await q.pushMany(['a', 'a', 'b'].map((group) => ({ name: 'report', args: [], group })));
    expect((await popEach(q, 3)).map((t) => t.group).sort()).toEqual(['a', 'b']);
  });
});

describe('fairness', () => {
  it('a group without limits is taken by one claim at a time: a concurrent claim takes from another group', async () => {
    const q = db.queue('unlimited');
    await q.pushMany(
      ['a', 'b'].flatMap((group) => [1, 2, 3].map((n) => ({ name: 'job', args: [n], group }))),
    );
    const claim = `SELECT group_key FROM "${db.schema}".claim_flow('unlimited', NULL, 1, 1, 0, gen_random_uuid(), 60000, 'w')`;
    const first = await db.pool.connect();
    try {
      await first.query('BEGIN');
      const [held] = (await first.query<{ group_key: string }>(claim)).rows;
      // The first claim's transaction still holds its group: the second takes the other.
      const [other] = await db.rows<{ group_key: string }>(claim);
      expect([held?.group_key, other?.group_key].sort()).toEqual(['a', 'b']);
    } finally {
      await first.query('ROLLBACK');
      first.release();
    }
  });

  it('a group with many tasks takes turns with the others instead of going first', async () => {
    const q = db.queue('fair');
    await q.pushMany(Array.from({ length: 200 }, (_, n) => ({ name: 'job', args: [n], group: 'big' })));
    await q.pushMany(['s1', 's2', 's3'].map((group) => ({ name: 'job', args: [], group })));
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const task = await q.pop();
      order.push(task?.group ?? '-');
      await task?.complete();
    }
    // every small group within the first round of four groups
    expect(order.slice(0, 4).sort()).toEqual(['big', 's1', 's2', 's3']);
  });

  it('serves the highest priority first in every group, then the next priority, each in turn order', async () => {
    const q = db.queue('fair-levels');
    await q.pushMany([
      ...['a', 'b', 'c'].map((group) => ({ name: 'job', args: [0], group })),
      { name: 'job', args: [9], group: 'c', priority: 9 },
      { name: 'job', args: [5], group: 'b', priority: 5 },
    ]);
    const claimed = await db.rows<{ group_key: string; priority: number }>(
      "SELECT group_key, priority FROM :schema.claim_flow('fair-levels', NULL, 5, 5, 0, gen_random_uuid(), 60000, 'w')",
    );
    expect(claimed.slice(0, 2)).toEqual([
      { group_key: 'c', priority: 9 },
      { group_key: 'b', priority: 5 },
    ]);
    expect(claimed.slice(2).map((t) => t.priority)).toEqual([0, 0, 0]);
  });

  it("a group of weight 3 takes three turns to another group's one; the weight shows in flow()", async () => {
    const q = db.queue('fair-weights');
    await q.setGroupWeight('gold', 3);
    await q.pushMany(
      ['gold', 'basic'].flatMap((group) =>
        Array.from({ length: 40 }, () => ({ name: 'job', args: [], group })),
      ),
    );
    const served: string[] = [];
    for (let i = 0; i < 40; i++) {
      const task = await q.pop();
      served.push(task?.group ?? '-');
      await task?.complete();
    }
    expect(served.filter((group) => group === 'gold')).toHaveLength(30);
    const { groups } = await q.flow();
    expect(groups.map((g) => [g.group_key, g.weight])).toEqual([
      ['basic', 1],
      ['gold', 3],
    ]);
    await q.setGroupWeight('gold', 1); // back to the default
    expect((await q.flow()).groups.map((g) => g.weight)).toEqual([1, 1]);
    await expect(q.setGroupWeight('gold', 0)).rejects.toThrow(ValidationError);
    await expect(q.setGroupWeight('', 2)).rejects.toThrow(ValidationError);
    await expect(db.rows("SELECT :schema.set_group_weight('fair-weights', 'gold', 1001)")).rejects.toThrow(
      /at most 1000/,
    );
  });

  it('priority still wins over turns', async () => {
    const q = db.queue('fair-priority');
    await q.pushMany([
      { name: 'job', args: [], group: 'a' },
      { name: 'job', args: [], group: 'b', priority: 5 },
      { name: 'job', args: [], group: 'b', priority: 5 },
    ]);
    expect((await popAll(q, 1))[0]?.group).toBe('b');
    expect((await q.pop())?.group).toBe('b');
  });
});

describe('durability of a claim', () => {
  /** synchronous_commit as a claim of `tasks` leaves it for its commit, and the server's setting. */
  const commitOfClaim = async (queue: string, tasks: { name: string; group?: string }[]) => {
    await db.queue(queue).pushMany(tasks.map((task) => ({ ...task, args: [] })));
    const client = await db.pool.connect();
    try {
      const server = (await client.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s"))
        .rows[0]?.s;
      await client.query('BEGIN');
      const claimed = await client.query<{ id: string | null }>(renderSql('task_claim_many', db.schema), [
        queue,
        null,
        10,
        crypto.randomUUID(),
        60_000,
        'w',
        null,
        10,
        0,
      ]);
      const atCommit = (
        await client.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")
      ).rows[0]?.s;
      await client.query('ROLLBACK');
      return { claimed: claimed.rows.filter((row) => row.id !== null).length, atCommit, server };
    } finally {
      client.release();
    }
  };

  it('a claim does not wait for the WAL flush, unless it starts a task under a limit (a crash must not forget it)', async () => {
    await limit('durable-cap', 'sync', 1);
    await limit('durable-rate', 'call', null, '5/1 second');
    await limit('durable-mixed', 'sync', 1);
    const cases = {
      plain: await commitOfClaim('durable-plain', [{ name: 'sync' }]),
      groupWithoutLimit: await commitOfClaim('durable-fair', [{ name: 'sync', group: 'g' }]),
      groupConcurrency: await commitOfClaim('durable-cap', [{ name: 'sync', group: 'g' }]),
      rateLimit: await commitOfClaim('durable-rate', [{ name: 'call' }]),
      plainAndLimited: await commitOfClaim('durable-mixed', [
        { name: 'plain' },
        { name: 'sync', group: 'g' },
      ]),
    };
    const server = cases.plain.server;
    expect(server).not.toBe('off');
    expect(cases).toEqual({
      plain: { claimed: 1, atCommit: 'off', server },
      groupWithoutLimit: { claimed: 1, atCommit: 'off', server },
      groupConcurrency: { claimed: 1, atCommit: server, server },
      rateLimit: { claimed: 1, atCommit: server, server },
      plainAndLimited: { claimed: 2, atCommit: server, server },
    });
  });
});

describe('pause and resume', () => {
  it('a paused queue starts nothing but stores pushes; resume wakes the worker', async () => {
    const q = db.queue('pausing');
    const ran: number[] = [];
    const job = q.handler({ name: 'job' }, async (n: number) => {
      ran.push(n);
    });
    expect(await q.pause()).toBe(true);
    expect(await q.pause()).toBe(false);
    await services.start(q.worker());
    await job.push(1);
    await job.with({ group: 'g' }).push(2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ran).toEqual([]);
    expect(await q.length()).toBe(2);
    expect((await q.flow()).paused).toMatchObject([{ queue: 'pausing', name: null }]);
    expect(await q.resume()).toBe(true);
    await waitFor(() => ran.length === 2, { timeoutMs: 5_000 });
    expect(await q.resume()).toBe(false);
  });

  it('pausing one task name holds only it, with its backlog out of the other names’ way', async () => {
    const q = db.queue('pause-name');
    await q.pushMany([
      ...Array.from({ length: 50 }, () => ({ name: 'mail', args: [] })),
      { name: 'other', args: [] },
    ]);
    await q.pause('mail');
    expect(await db.rows("SELECT count(*)::int AS n FROM :schema.ready WHERE queue = 'pause-name'")).toEqual([
      { n: 1 },
    ]);
    const claimed = await popAll(q, 3);
    expect(claimed.map((t) => t.name)).toEqual(['other']);
    await q.resume('mail');
    expect(await popAll(q, 60)).toHaveLength(50);
  });
});

describe('time to live', () => {
  it('a task not started within ttlMs never runs and ends cancelled with the reason', async () => {
    const q = db.queue('ttl');
    const ref = await q.push('job', [], { ttlMs: 50 });
    const kept = await q.push('job', [], { ttlMs: 60_000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const claimed = await popAll(q, 2);
    expect(claimed.map((t) => t.id)).toEqual([kept.id]);
    expect(await q.scheduler().expirer.runOnce()).toBe(1);
    const task = await q.getTask(ref.id);
    expect(task).toMatchObject({ state: 'cancelled', attempts: 0 });
    expect(task.error).toMatch(/^expired: not started within its time to live \(50 ms\)/);
  });

  it('from SQL: push with group_key and ttl', async () => {
    const [row] = await db.rows<{ id: string }>(
      "SELECT :schema.push('sql-flow', 'job', group_key => 'tenant:1', ttl => interval '30 s')::text AS id",
    );
    const [task] = await db.rows(
      'SELECT group_key, expires_at - created_at AS ttl FROM :schema.all_tasks WHERE id = $1',
      [row?.id],
    );
    expect(task).toEqual({ group_key: 'tenant:1', ttl: { seconds: 30 } });
  });
});

describe('replace and supersede', () => {
  it("onConflict 'replace': the pending task takes the new args and runAt, keeps its id; in the caller's transaction", async () => {
    const q = db.queue('debounce');
    const first = await q.push('sync', [1], { key: 'user:42', delayMs: 60_000 });
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const again = await q.push('sync', [2], { key: 'user:42', onConflict: 'replace', client });
      expect(again).toMatchObject({ id: first.id, inserted: false });
      await client.query('ROLLBACK');
      expect((await q.getTask(first.id)).args).toEqual([1]);
    } finally {
      client.release();
    }
    await q.push('sync', [3], { key: 'user:42', onConflict: 'replace' });
    const task = await q.getTask(first.id);
    expect(task).toMatchObject({ args: [3], state: 'ready' }); // due now: no longer delayed
    expect(await q.length()).toBe(1);
    expect((await q.pop())?.args).toEqual([3]);
    // Nothing pending with the key: replace inserts.
    expect(await q.push('sync', [4], { key: 'user:42', onConflict: 'replace' })).toMatchObject({
      inserted: true,
    });
  });

  it('supersede: the running task with the key is cancelled (its signal aborts); the new one runs', async () => {
    const q = db.queue('supersede');
    const seen: string[] = [];
    const sync = q.handler({ name: 'sync' }, async function (this: { signal: AbortSignal }, version: string) {
      seen.push(`start ${version}`);
      if (version === 'old') {
        await new Promise((resolve) => this.signal.addEventListener('abort', resolve));
        seen.push('old aborted');
        throw this.signal.reason;
      }
    });
    await services.start(q.worker({ concurrency: 2 }));
    const old = await sync.with({ key: 'user:7' }).push('old');
    await waitFor(() => seen.includes('start old'));
    const next = await sync.with({ key: 'user:7', supersede: true }).push('new');
    expect(next.id).not.toBe(old.id);
    await waitFor(() => seen.includes('old aborted') && seen.includes('start new'), { timeoutMs: 10_000 });
    await waitFor(async () => (await q.getTask(old.id)).state === 'cancelled');
  });

  it('onConflict or supersede without a key: ValidationError', async () => {
    const q = db.queue('supersede-bad');
    await expect(q.push('sync', [], { onConflict: 'replace' })).rejects.toThrow(/need a key/);
    await expect(q.push('sync', [], { supersede: true })).rejects.toThrow(ValidationError);
    expect(await q.length()).toBe(0);
  });
});

describe('bad input is refused at the boundary, and nothing is stored', () => {
  const q = db.queue('bad-flow');
  const perGroup = q.handler({ name: 'per_group', groupConcurrency: 2 }, async () => {});

  it.each([
    ['a group over 200 characters', () => perGroup.with({ group: 'x'.repeat(201) }).push()],
    ['an empty group', () => perGroup.with({ group: '' }).push()],
    ['no group for a handler with groupConcurrency', () => perGroup.push()],
    [
      'a ttl that ends before the task is due',
      () => perGroup.with({ group: 'g', ttlMs: 1000, delayMs: 5000 }).push(),
    ],
    ['a ttl of 0', () => perGroup.with({ group: 'g', ttlMs: 0 }).push()],
  ])('%s: ValidationError', async (_, push) => {
    await expect((async () => push())()).rejects.toBeInstanceOf(ValidationError);
    expect(await q.length()).toBe(0);
  });

  it.each([
    ['groupConcurrency 0', { groupConcurrency: 0 }],
    ['groupConcurrency 1.5', { groupConcurrency: 1.5 }],
    ['rateLimit of 0', { rateLimit: { limit: 0, periodMs: 1000 } }],
    ['rateLimit without a period', { rateLimit: { limit: 5 } }],
  ])('%s: ConfigError', (_, options) => {
    expect(() => q.handler({ name: 'bad', ...options } as never, async () => {})).toThrow(ConfigError);
  });

  it('from SQL, and through a queue without handlers: the database refuses, as a ValidationError', async () => {
    await expect(
      db.rows(`SELECT :schema.push('bad-flow', 'x', group_key => repeat('x', 201))`),
    ).rejects.toThrow(/at most 200 characters/);
    await limit('bad-flow', 'limited', 2);
    const producer = db.queue('bad-flow');
    await expect(producer.push('limited', [])).rejects.toThrow(ValidationError);
    expect(await q.length()).toBe(0);
  });
});

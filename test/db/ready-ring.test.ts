import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { PgTq } from '../../src/index.js';
import { useTestSchema } from '../helpers/queue.js';

// The ready ring (migrations/1763800000004_ready_ring.sql): one pointer per ready
// task, kept in step by triggers; segments truncated once spent, whatever the
// oldest snapshot in the database.
const db = await useTestSchema('pgtq_ring');

/** One pass that moves on from any used segment (by default only from one of 256 kB or more). */
const rotate = async () =>
  (
    await db.rows<{ segment: number; truncated: number }>(
      'SELECT current_segment AS segment, truncated FROM :schema.rotate_ready(min_bytes => 1)',
    )
  )[0] as { segment: number; truncated: number };
const segmentSizes = async () =>
  (
    await db.rows<{ segment: number; bytes: string }>(
      `SELECT s AS segment, pg_relation_size(format('%I.%I', $1::text, 'ready_' || s)) AS bytes
       FROM generate_series(0, 3) AS s`,
      [db.schema],
    )
  ).map((row) => Number(row.bytes));
const pointers = async (queue: string) =>
  (
    await db.rows<{ id: string }>('SELECT id::text AS id FROM :schema.ready WHERE queue = $1 ORDER BY id', [
      queue,
    ])
  ).map((row) => row.id);
const readyIds = async (queue: string) =>
  (
    await db.rows<{ id: string }>(
      `SELECT id::text AS id FROM :schema.tasks WHERE queue = $1 AND state = 'ready' ORDER BY id`,
      [queue],
    )
  ).map((row) => row.id);

async function drain(q: PgTq): Promise<number> {
  let done = 0;
  for (let task = await q.pop(); task; task = await q.pop()) {
    await task.complete();
    done++;
  }
  return done;
}

describe('pointers', () => {
  it('every ready task has exactly one pointer, through push, delay, promotion, cancel, reschedule, retry, rescue and delete', async () => {
    const q = db.queue('pointers');
    const refs = await q.pushMany(Array.from({ length: 6 }, (_, i) => ({ name: 'a', args: [i] })));
    const ids = refs.map((ref) => ref?.id ?? '');
    const later = await q.push('a', [9], { delayMs: 60_000 });
    expect(await pointers('pointers')).toEqual(await readyIds('pointers'));

    await q.cancel(ids[0] ?? '');
    await q.reschedule(ids[1] ?? '', new Date(Date.now() + 60_000));
    await q.reschedule(later.id, new Date(Date.now() - 1000));
    await q.delete(ids[2] ?? '');
    await q.retry([ids[0] ?? '']);
    const popped = await q.pop({ leaseMs: 1 });
    expect(popped).not.toBeNull();
    // Its lease ran out: the rescue makes it ready again, with a new pointer.
    await new Promise((resolve) => setTimeout(resolve, 10));
    await q.scheduler().rescuer.runOnce();
    expect(await pointers('pointers')).toEqual(await readyIds('pointers'));
    expect((await pointers('pointers')).length).toBe(5);

    expect(await drain(q)).toBe(5);
    expect(await pointers('pointers')).toEqual([]);
  });

  it('a role that may only insert into tasks pushes, and its task gets a pointer all the same', async () => {
    const role = `${db.schema}_pusher`;
    await db.rows(`CREATE ROLE "${role}" NOLOGIN`);
    try {
      await db.rows(`GRANT USAGE ON SCHEMA :schema TO "${role}"`);
      await db.rows(`GRANT SELECT, INSERT ON :schema.tasks TO "${role}"`);
      await db.rows(`GRANT USAGE ON SEQUENCE :schema.task_id_seq TO "${role}"`);
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SET LOCAL ROLE "${role}"`);
        const { rows } = await client.query<{ id: string }>(
          `SELECT "${db.schema}".push('limited-role', 'a')::text AS id`,
        );
        await client.query('COMMIT');
        expect(await pointers('limited-role')).toEqual([rows[0]?.id]);
        // Claimed, so that it holds no segment of the ring the next tests turn.
        expect(await drain(db.queue('limited-role'))).toBe(1);
      } finally {
        client.release();
      }
    } finally {
      await db.rows(`DROP OWNED BY "${role}"`);
      await db.rows(`DROP ROLE "${role}"`);
    }
  });

  it('claims keep priority and then due order across segments', async () => {
    const q = db.queue('order');
    await q.push('a', ['low, first'], { priority: 0 });
    await rotate();
    await q.push('a', ['high, second'], { priority: 5 });
    await rotate();
    await q.push('a', ['low, third'], { priority: 0 });
    const order: unknown[] = [];
    for (let task = await q.pop(); task; task = await q.pop()) {
      order.push(task.args[0]);
      await task.complete();
    }
    expect(order).toEqual(['high, second', 'low, first', 'low, third']);
  });
});

describe('rotation', () => {
  const pins: pg.Client[] = [];
  afterEach(async () => {
    for (const pin of pins.splice(0)) await pin.end();
  });
  /** A connection of its own, closed after the test. */
  const connection = async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    pins.push(client);
    return client;
  };

  it('moves on only from a used segment, and truncates every spent one but the current', async () => {
    const q = db.queue('rotation');
    await drain(q);
    await rotate();
    await rotate();
    const { segment } = await rotate();
    // Nothing pushed since: it stays.
    expect((await rotate()).segment).toBe(segment);
    await q.pushMany(Array.from({ length: 50 }, () => ({ name: 'a', args: [] })));
    // 50 pointers are far from the default 256 kB: a scheduler's pass keeps the segment.
    const [kept] = await db.rows<{ segment: number }>(
      'SELECT current_segment AS segment FROM :schema.rotate_ready()',
    );
    expect(kept?.segment).toBe(segment);
    const moved = await rotate();
    expect(moved.segment).toBe((segment + 1) % 4);
    // The old segment still points at 50 ready tasks: kept.
    expect((await segmentSizes())[segment]).toBeGreaterThan(0);
    expect(await drain(q)).toBe(50);
    expect((await rotate()).truncated).toBeGreaterThanOrEqual(1);
    expect((await segmentSizes())[segment]).toBe(0);
  });

  it('never truncates a segment under a push that has not committed yet: its task is claimed after', async () => {
    const q = db.queue('open-push');
    const client = await connection();
    await client.query('BEGIN');
    const { id } = await q.push('a', ['in flight'], { client });
    // The segment it went to stops being current, and is spent as far as any committed row shows.
    const first = await rotate();
    const second = await rotate();
    expect(second.segment).toBe(first.segment);
    await client.query('COMMIT');
    const task = await q.pop();
    expect(task?.id).toBe(id);
    await task?.complete();
  });

  it('truncates spent segments while an old snapshot pins the horizon, so a claim reads no more than a few pages', async () => {
    const q = db.queue('pinned');
    const pin = await connection();
    await pin.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await pin.query('SELECT count(*) FROM pg_class');
    for (let round = 0; round < 10; round++) {
      await q.pushMany(Array.from({ length: 500 }, () => ({ name: 'a', args: [] })));
      for (;;) {
        const tasks = await Promise.all(Array.from({ length: 10 }, () => q.pop()));
        const claimed = tasks.filter((task) => task !== null);
        await Promise.all(claimed.map((task) => task.complete()));
        if (claimed.length < 10) break;
      }
      await rotate();
    }
    await q.push('a', ['the next one']);
    // 5,000 claimed tasks' dead pointers, none removable by vacuum: the claim search walks only the live segment.
    const [
      {
        'QUERY PLAN': [explain],
      } = { 'QUERY PLAN': [] },
    ] = await db.rows<{
      'QUERY PLAN': { Plan: { 'Shared Hit Blocks': number; 'Shared Read Blocks': number } }[];
    }>(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
       SELECT id FROM :schema.ready WHERE queue = 'pinned' ORDER BY priority DESC, run_at, id LIMIT 10`,
    );
    const buffers = (explain?.Plan['Shared Hit Blocks'] ?? 0) + (explain?.Plan['Shared Read Blocks'] ?? 0);
    expect(buffers).toBeGreaterThan(0);
    expect(buffers).toBeLessThan(60);
    const [xmin] = await db.rows<{ held: boolean }>(
      'SELECT backend_xmin IS NOT NULL AS held FROM pg_stat_activity WHERE pid = $1',
      [(pin as unknown as { processID: number }).processID],
    );
    expect(xmin?.held).toBe(true);
    await pin.query('COMMIT');
    expect(await drain(q)).toBe(1);
  });
});

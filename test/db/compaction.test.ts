import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskCompaction } from '../../src/db/task-rows.js';
import type { PgTq } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';
import { useServices } from '../helpers/services.js';

// Compaction of `tasks` (migrations/1763800000005_compact_tasks.sql): once vacuum
// has removed what a held snapshot kept, the live rows go back into a truncated
// table, unchanged.
const db = await useTestSchema('pgtq_compact');
const services = useServices();

/** One pass with thresholds a test can reach: any size, at most `maxRows` rows. */
const compact = async (maxRows = 1000, { lockTimeoutMs = 50, vacuumAfterMs = 60_000 } = {}) =>
  (
    await db.rows<TaskCompaction>(
      `SELECT outcome, live_rows, bytes_before::float8 AS bytes_before, bytes_after::float8 AS bytes_after
       FROM :schema.compact_tasks(min_bytes => 1, max_rows => $1, max_scan_ms => 1000, lock_timeout_ms => $2,
                                  vacuum_after_ms => $3)`,
      [maxRows, lockTimeoutMs, vacuumAfterMs],
    )
  )[0] as TaskCompaction;
const allRows = () => db.rows('SELECT * FROM :schema.tasks ORDER BY id');
const pointers = async () =>
  (await db.rows<{ id: string }>('SELECT id::text AS id FROM :schema.ready ORDER BY id')).map(
    (row) => row.id,
  );
const readyIds = async () =>
  (
    await db.rows<{ id: string }>(
      `SELECT id::text AS id FROM :schema.tasks WHERE state = 'ready' ORDER BY id`,
    )
  ).map((row) => row.id);

/**
 * Pushes and deletes `n` tasks, then vacuums. A task pushed last stays, as live
 * tasks do among the dead: vacuum cannot cut off an empty tail, and the table
 * keeps the space the others took.
 */
async function churn(q: PgTq, n: number) {
  await q.pushMany(Array.from({ length: n }, (_, i) => ({ name: 'churn', args: [`${i}`.repeat(20)] })));
  await q.push('tail', [], { delayMs: 3_600_000 });
  await db.rows(`DELETE FROM :schema.tasks WHERE queue = $1 AND name = 'churn'`, [q.name]);
  await db.rows('VACUUM :schema.tasks');
}

const connections: pg.Client[] = [];
afterEach(async () => {
  for (const client of connections.splice(0)) await client.end();
});
async function connection() {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  connections.push(client);
  return client;
}

describe('compact_tasks', () => {
  it('gives the space back and keeps every live task as it was: pending, keyed, scheduled and running', async () => {
    const q = db.queue('compact');
    await churn(q, 5000);
    await q.push('a', ['ready'], { priority: 3 });
    const keyed = await q.push('a', ['keyed'], { key: 'k1' });
    await q.push('a', ['later'], { delayMs: 3_600_000 });
    await q.push('a', ['to run']);
    const running = await q.pop();
    expect(running?.args).toEqual(['ready']);
    const before = await allRows();

    const result = await compact();
    expect(result.outcome).toBe('compacted');
    expect(result.live_rows).toBeGreaterThanOrEqual(5);
    expect(result.bytes_after).toBeLessThan(result.bytes_before / 4);
    expect(await allRows()).toEqual(before);
    // One pointer per ready task still, none added by putting the rows back.
    expect(await pointers()).toEqual(await readyIds());
    expect((await pointers()).length).toBe(2);

    // The running task's lease still holds: it finishes.
    await running?.complete({ done: true });
    const [finished] = await db.rows<{ state: string }>(
      'SELECT state FROM :schema.task_history WHERE id = $1',
      [running?.id],
    );
    expect(finished?.state).toBe('succeeded');
    // The key still deduplicates.
    expect((await q.push('a', ['again'], { key: 'k1' })).id).toBe(keyed.id);
    // Claims go on in order; new pushes get new ids and pointers.
    const next = await q.push('a', ['after']);
    expect(BigInt(next.id)).toBeGreaterThan(BigInt(keyed.id));
    const order: unknown[] = [];
    for (let task = await q.pop(); task; task = await q.pop()) {
      order.push(task.args[0]);
      await task.complete();
    }
    expect(order).toEqual(['keyed', 'to run', 'after']);
    expect(await pointers()).toEqual([]);
  });

  it('leaves a table alone that is small, or not four times what its rows need', async () => {
    const q = db.queue('small');
    await churn(q, 1000);
    await compact();
    expect((await compact()).outcome).toBe('small');
    // The scheduler's default threshold is 32 MiB.
    expect((await q.scheduler().compactor.runOnce()).outcome).toBe('small');
  });

  it('waits while a held snapshot keeps vacuum from removing the dead rows', async () => {
    const q = db.queue('pinned');
    const pin = await connection();
    await pin.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await pin.query('SELECT count(*) FROM pg_class');
    await churn(q, 5000);
    // Vacuumed just now, in vain: it waits.
    expect((await compact(100)).outcome).toBe('busy');
    // Once the last vacuum is old enough, it asks for another.
    expect((await compact(100, { vacuumAfterMs: 0 })).outcome).toBe('vacuum');
    await pin.query('COMMIT');
    await db.rows('VACUUM :schema.tasks');
    expect((await compact(100)).outcome).toBe('compacted');
  });

  it('gives way to a transaction that holds the table: a push not yet committed is kept', async () => {
    const q = db.queue('open');
    await churn(q, 5000);
    const client = await connection();
    await client.query('BEGIN');
    const { id } = await q.push('a', ['in flight'], { client });
    expect((await compact(1000, { lockTimeoutMs: 10 })).outcome).toBe('locked');
    await client.query('COMMIT');
    const task = await q.pop();
    expect(task?.id).toBe(id);
    await task?.complete();
  });
});

describe('under a worker', () => {
  it('loses no task and runs none twice while the table is compacted under claims and finishes', async () => {
    const q = db.queue('busy');
    const seen: number[] = [];
    q.handler(async function work(n: number) {
      seen.push(n);
    });
    let compactedMidway = 0;
    await services.start(q.worker({ concurrency: 20 }));
    let done = false;
    const compactions = (async () => {
      while (!done) {
        // Bloat it again each time, so that every pass has something to compact.
        await churn(db.queue('busy-churn'), 5000);
        const { outcome } = await compact(10_000);
        if (outcome === 'compacted' && seen.length < 4000) compactedMidway++;
      }
    })();
    try {
      // Over about four seconds, so that compactions fall among claims and finishes.
      for (let batch = 0; batch < 40; batch++) {
        await q.pushMany(Array.from({ length: 100 }, (_, i) => ({ name: 'work', args: [batch * 100 + i] })));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await waitFor(() => seen.length >= 4000, { timeoutMs: 30_000 });
    } finally {
      done = true;
      await compactions;
    }
    expect(compactedMidway).toBeGreaterThan(0);
    expect(seen.length).toBe(4000);
    expect(new Set(seen).size).toBe(4000);
    const [row] = await db.rows<{ n: number }>(
      `SELECT count(*)::int AS n FROM :schema.finished_tasks WHERE queue = 'busy' AND state = 'succeeded'`,
    );
    expect(row?.n).toBe(4000);
  });
});

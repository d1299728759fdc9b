import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { renderSql } from '../../src/db/sql-files.js';
import { useTestSchema } from '../helpers/queue.js';

// The hot statements and the views, planned over a queue of 100,000 pending tasks
// and a history of 500,000 over four days: each must read through an index (or
// pruned partitions), never scan the tables whole.
const db = await useTestSchema('pgtq_explain');
/** A second schema, made bloated below. */
const bloated = await useTestSchema('pgtq_explain_bloat');

beforeAll(async () => {
  await db.rows(`SELECT :schema.create_history_partitions(current_date - 4, 5)`);
  await db.rows(
    `INSERT INTO :schema.tasks (queue, name, state, run_at, lease_expires_at)
     SELECT 'bulk', 'job' || (i % 10),
            CAST(CASE WHEN i <= 100 THEN 'running' WHEN i % 2 = 0 THEN 'ready' ELSE 'scheduled' END AS :schema.task_state),
            now() + (i % 1000) * interval '1 second',
            CASE WHEN i <= 100 THEN now() + interval '20 seconds' END
     FROM generate_series(1, 100000) AS i`,
  );
  await db.rows(
    `INSERT INTO :schema.finished_tasks
       (id, queue, name, args, state, priority, run_at, attempts, max_attempts, created_at, started_at, finished_at, error)
     SELECT nextval(':schema.task_id_seq'), 'bulk', 'job' || (i % 10), '[]',
            CAST(CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'succeeded' END AS :schema.task_state),
            0, t, 1, 10, t, t, t + interval '5 ms',
            CASE WHEN i % 100 = 0 THEN 'Error: boom' END
     FROM generate_series(1, 500000) AS i, LATERAL (SELECT now() - i * interval '0.6 seconds' AS t) AS at`,
  );
  await db.rows('ANALYZE :schema.tasks');
  await db.rows('ANALYZE :schema.ready');
  await db.rows('ANALYZE :schema.finished_tasks');
}, 120_000);

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Subplans Removed'?: number;
  'Total Cost': number;
  Plans?: PlanNode[];
}

function nodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)];
}

type TestSchema = typeof db;

/**
 * The plan of `sql` (with :schema), as prepared statements run it: generic, whatever the
 * parameters; or `custom`, as an unnamed statement is planned (the dashboard's), for its values.
 */
async function plan(
  sql: string,
  params: unknown[] = [],
  on: TestSchema = db,
  custom = false,
): Promise<PlanNode[]> {
  const client: pg.PoolClient = await on.pool.connect();
  try {
    await client.query(`SET plan_cache_mode = ${custom ? 'force_custom_plan' : 'force_generic_plan'}`);
    await client.query(`PREPARE checked AS ${sql.replaceAll(':schema', `"${on.schema}"`)}`);
    const literal = (value: unknown) =>
      value === null
        ? 'NULL'
        : `'${(typeof value === 'string' ? value : JSON.stringify(value)).replaceAll("'", "''")}'`;
    const { rows } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      `EXPLAIN (FORMAT JSON) EXECUTE checked${params.length ? `(${params.map(literal).join(', ')})` : ''}`,
    );
    return nodes(rows[0]?.['QUERY PLAN'][0].Plan as PlanNode);
  } finally {
    await client.query('DEALLOCATE ALL');
    client.release();
  }
}

const file = (name: string, on: TestSchema = db) => renderSql(name, on.schema);
/** Sequential scans of tables with rows (an empty partition is scanned at no cost, and rightly so). */
const seqScans = (plan: PlanNode[]) =>
  plan
    .filter((node) => node['Node Type'].endsWith('Seq Scan') && node['Total Cost'] > 50)
    .map((node) => node['Relation Name']);
const indexes = (plan: PlanNode[]) => plan.map((node) => node['Index Name']).filter(Boolean);
const sorts = (plan: PlanNode[]) => plan.filter((node) => node['Node Type'] === 'Sort');

it('claim merges the ready ring’s segments by index and takes its rows by position', async () => {
  const claim = await plan(file('task_claim_many'), [
    'bulk',
    null,
    10,
    crypto.randomUUID(),
    20000,
    'w',
    null,
    10,
    500,
  ]);
  expect(indexes(claim)).toContain('ready_0_queue_priority_run_at_id_idx');
  expect(claim.some((node) => node['Node Type'] === 'Merge Append')).toBe(true);
  expect(
    claim.filter((node) => node['Node Type'] === 'Tid Scan').map((node) => node['Relation Name']),
  ).toContain('ready_0');
  expect(indexes(claim)).toContain('tasks_pkey');
  expect(seqScans(claim)).toEqual([]);
});

/** The statements a worker runs on the tasks it holds, each with one task's outcome. */
function heldTaskStatements(on: TestSchema) {
  const held = JSON.stringify([{ id: 1, lease_id: crypto.randomUUID() }]);
  const outcome = JSON.stringify([
    { id: 1, lease_id: crypto.randomUUID(), state: 'succeeded', delay_ms: 1000 },
  ]);
  return Promise.all([
    plan(file('task_finish_many', on), [outcome, null], on),
    plan(file('task_heartbeat_many', on), [held, 20000, null], on),
    plan(file('task_release_many', on), [held], on),
    plan(file('task_retry_many', on), [outcome, null], on),
  ]);
}

/** Looks up each task by its id in the primary key, not by walking the index or another one. */
function expectLookupsById(p: PlanNode[]) {
  const lookups = p.filter((node) => node['Index Name'] === 'tasks_pkey');
  expect(lookups.length).toBeGreaterThan(0);
  for (const node of lookups) expect(node['Index Cond']).toMatch(/\bid = /);
  expect(indexes(p)).not.toContain('tasks_lease_idx');
  expect(seqScans(p)).toEqual([]);
}

it('finish, heartbeat, release and retry find their tasks by primary key, never by the lease index', async () => {
  for (const p of await heldTaskStatements(db)) expectLookupsById(p);
});

describe('after a held snapshot and a vacuum', () => {
  // Vacuum then counts a few live rows in a table of many pages and an index full of
  // dead entries: a plan that reads the whole primary key looks cheap, and is not.
  beforeAll(async () => {
    const pin = new pg.Client({ connectionString: bloated.url });
    await pin.connect();
    try {
      await pin.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await pin.query('SELECT 1');
      await bloated.rows(
        `INSERT INTO :schema.tasks (queue, name, state) SELECT 'q', 'a', 'scheduled' FROM generate_series(1, 30000)`,
      );
      await bloated.rows(`DELETE FROM :schema.tasks`);
      await bloated.rows(
        `INSERT INTO :schema.tasks (queue, name, state, lease_id, lease_expires_at)
         SELECT 'q', 'a', 'running', gen_random_uuid(), now() + interval '1 minute' FROM generate_series(1, 10)`,
      );
      await bloated.rows('VACUUM ANALYZE :schema.tasks');
    } finally {
      await pin.end();
    }
  });

  it('finish, heartbeat, release and retry still look each task up by id', async () => {
    for (const p of await heldTaskStatements(bloated)) expectLookupsById(p);
  });
});

it('promote, next due, rescue and the scheduler check read their partial indexes', async () => {
  const promote = await plan(file('task_promote_due'), [1000, null]);
  expect(indexes(promote)).toContain('tasks_due_idx');
  expect(indexes(await plan(file('task_next_due'), [null]))).toContain('tasks_due_idx');
  const rescue = await plan(file('task_rescue_expired'), [1000, null, null]);
  // A pass that starts where the last one ended seeks into the lease index.
  const bounded = await plan(file('task_rescue_expired'), [1000, null, new Date().toISOString()]);
  const leaseScan = bounded.find((node) => node['Index Name'] === 'tasks_lease_idx');
  expect(leaseScan?.['Index Cond']).toMatch(/lease_expires_at >=/);
  expect(indexes(rescue)).toContain('tasks_lease_idx');
  for (const p of [promote, rescue, await plan(file('process_scheduler_check'), ['bulk', 10000])]) {
    expect(seqScans(p)).toEqual([]);
  }
});

it('listing tasks newest first walks the id indexes backwards without sorting', async () => {
  const list = await plan(file('task_list'), ['bulk', null, null, null, 50, null, null]);
  expect(sorts(list)).toEqual([]);
  expect(list.some((node) => node['Node Type'] === 'Merge Append')).toBe(true);
  expect(seqScans(list)).toEqual([]);
});

it('a list filtered by a task name that history lacks reads the name index, not the history', async () => {
  const list = await plan(file('task_list'), ['bulk', null, 'job42', null, 50, null, null], db, true);
  expect(seqScans(list).filter((table) => String(table).startsWith('finished_tasks'))).toEqual([]);
  const history = indexes(list).filter((index) => String(index).startsWith('finished_tasks'));
  expect(history.length).toBeGreaterThan(0);
  for (const index of history) expect(index).toMatch(/queue_name_id_idx$/);
});

it('one task by id, pending or finished, through the id indexes', async () => {
  const get = await plan(file('task_get'), ['12345']);
  expect(seqScans(get)).toEqual([]);
  expect(indexes(get)).toContain('tasks_pkey');
});

it('failures reads only failed rows, throughput only the last hours, live_processes only running tasks', async () => {
  const failures = await plan('SELECT * FROM :schema.failures');
  expect(seqScans(failures)).toEqual([]);
  expect(indexes(failures).length).toBeGreaterThan(0);

  const throughput = await plan('SELECT * FROM :schema.throughput');
  // Five daily partitions exist; at most the last one or two are read. Whole, when
  // they lie within the window: just after midnight today's holds only its last minutes.
  expect(throughput.find((node) => node['Subplans Removed'])?.['Subplans Removed']).toBeGreaterThanOrEqual(3);
  const day = (ago: number) =>
    `finished_tasks_${new Date(Date.now() - ago * 86_400_000).toISOString().slice(0, 10).replaceAll('-', '')}`;
  for (const scanned of seqScans(throughput)) expect([day(0), day(1)]).toContain(scanned);

  const live = await plan('SELECT * FROM :schema.live_processes');
  expect(seqScans(live)).toEqual([]);

  const summary = await plan('SELECT * FROM :schema.queue_summary');
  expect(summary.some((node) => String(node['Relation Name']).startsWith('finished_tasks'))).toBe(false);
});

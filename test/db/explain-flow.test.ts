import { expect, it } from 'vitest';
import { useTestSchema } from '../helpers/queue.js';

// claim_flow's statements, as a worker's connection plans them: once, at its first
// claim, over tables the planner has no statistics of (a queue fills faster than
// autovacuum analyzes it), or has statistics of. Each must read by index in the order
// it needs, and walk only the groups the claim needs, not sort or scan a queue's
// tasks or groups.
const db = await useTestSchema('pgtq_explain_flow');

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}
interface Explained {
  text: string;
  plan: PlanNode[];
  jit: boolean;
}
const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];

/** Runs one claim on a connection that plans it anew; returns how many it took and each statement's plan. */
async function explainClaim(queue: string, names: string[] | null, wanted: number) {
  const client = await db.pool.connect();
  const plans: Explained[] = [];
  client.on('notice', (notice) => {
    const json = notice.message?.slice(notice.message.indexOf('{'));
    if (!json?.startsWith('{')) return;
    const explained = JSON.parse(json) as { 'Query Text': string; Plan: PlanNode; JIT?: unknown };
    plans.push({ text: explained['Query Text'], plan: nodes(explained.Plan), jit: 'JIT' in explained });
  });
  try {
    await client.query("LOAD 'auto_explain'");
    for (const setting of [
      'auto_explain.log_min_duration = 0',
      'auto_explain.log_nested_statements = on',
      'auto_explain.log_analyze = on',
      'auto_explain.log_format = json',
      'jit = on',
      'client_min_messages = log',
    ]) {
      await client.query(`SET ${setting}`);
    }
    // plans made now, with what the planner knows now
    await client.query('DISCARD PLANS');
    const claimed = await client.query<{ id: string | null }>(
      `SELECT id FROM "${db.schema}".claim_flow($1, $2, $3, 10, 500, gen_random_uuid(), 60000, 'w')`,
      [queue, names, wanted],
    );
    return { taken: claimed.rows.filter((row) => row.id !== null).length, plans };
  } finally {
    await client.query('RESET ALL');
    client.release();
  }
}

/** Rows each scan of `relation` read, kept or filtered out, over all its loops. */
const rowsRead = (plans: Explained[], relation: string) =>
  plans
    .flatMap((p) => p.plan)
    .filter((node) => node['Relation Name'] === relation && node['Node Type'].endsWith('Scan'))
    .map(
      (node) =>
        ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0)) * (node['Actual Loops'] ?? 1),
    );

// Planned without statistics, and with statistics of the queue's 1,000 groups (which
// once made the planner scan them all, by the first column of their key, to move the
// few it served).
it.each([
  ['without statistics', 'flow', false],
  ['with statistics', 'flow_analyzed', true],
])(
  'claim_flow, %s, reads the top priority and the groups in turn by index, and sorts only what it takes',
  async (_, queue, analyze) => {
    await db.rows('SELECT :schema.set_flow_limits($1, $2, 5)', [queue, 'sync']);
    await db.rows(
      `SELECT :schema.push_many(jsonb_agg(jsonb_build_object('queue', $1::text, 'name', 'sync', 'group_key', 'g' || (i % 1000))))
       FROM generate_series(1, 20000) AS i`,
      [queue],
    );
    if (analyze) await db.rows('ANALYZE :schema.tasks, :schema.flow_groups');
    const { taken, plans } = await explainClaim(queue, null, 110);
    expect(taken).toBe(110);
    const statement = (start: string) => {
      const found = plans.find((p) => p.text.trimStart().startsWith(start));
      if (!found) throw new Error(`no plan of "${start}…" among ${plans.length}`);
      return found.plan;
    };
    const all = plans.flatMap((p) => p.plan);
    // Never compiled: JIT takes longer than any claim, at each claim.
    expect(plans.filter((p) => p.jit).map((p) => p.text.slice(0, 40))).toEqual([]);
    expect(
      all.filter((node) => node['Node Type'] === 'Seq Scan').map((node) => node['Relation Name']),
    ).toEqual([]);

    // One statement reads the top priority, from the top of its index, and walks the
    // groups in turn order, no more of them than the claim needs (22 of 1,000 here:
    // 110 tasks, 5 from each).
    const walk = statement('WITH RECURSIVE levels');
    expect(walk.some((node) => node['Index Name'] === 'tasks_group_priority_idx')).toBe(true);
    const turns = walk.find((node) => node['Index Name'] === 'flow_groups_turn_idx');
    expect(turns?.['Actual Rows']).toBeLessThanOrEqual(30);
    // Nothing is sorted but the tasks of the groups taken (at most 22 × 5).
    const sorted = all
      .filter((node) => node['Node Type'].endsWith('Sort'))
      .map((node) => node['Actual Rows'] ?? 0);
    expect(Math.max(0, ...sorted)).toBeLessThanOrEqual(110);
    // No more groups read than the walk takes, in any statement (the served ones are
    // moved by position).
    expect(Math.max(0, ...rowsRead(plans, 'flow_groups'))).toBeLessThanOrEqual(30);
  },
);

it.each([
  ['a worker of every name', null],
  ['a worker of the other name', ['z_live']],
  ['a worker of the paused name only', ['a_paused']],
])("claim_flow, for %s, steps over a paused name's backlog by index", async (_, names) => {
  const queue = `paused_${names?.join('') ?? 'all'}`;
  await db.rows(
    `SELECT :schema.push_many(jsonb_agg(jsonb_build_object('queue', $1::text, 'name', n, 'group_key', 'g' || (i % 50))))
     FROM generate_series(1, 5000) AS i, LATERAL (SELECT CASE WHEN i <= 4900 THEN 'a_paused' ELSE 'z_live' END AS n) AS x`,
    [queue],
  );
  await db.rows('SELECT :schema.pause_queue($1, $2)', [queue, 'a_paused']);
  const { taken, plans } = await explainClaim(queue, names, 10);
  expect(taken).toBe(names?.includes('a_paused') ? 0 : 10);
  // 4,900 paused tasks come first in every index of the queue's tasks; no scan reads them.
  expect(Math.max(0, ...rowsRead(plans, 'tasks'))).toBeLessThanOrEqual(200);
});

it('claim_flow reads no group when no priority has a ready task, as at the end of every claim left short', async () => {
  const queue = 'all_running';
  await db.rows('SELECT :schema.set_flow_limits($1, $2, 1)', [queue, 'sync']);
  await db.rows(
    `SELECT :schema.push_many(jsonb_agg(jsonb_build_object('queue', $1::text, 'name', 'sync', 'group_key', 'g' || i)))
     FROM generate_series(1, 1000) AS i`,
    [queue],
  );
  expect((await explainClaim(queue, null, 2000)).taken).toBe(1000);
  // Every group now runs its one task, and none has another.
  const { taken, plans } = await explainClaim(queue, null, 10);
  expect(taken).toBe(0);
  expect(Math.max(0, ...rowsRead(plans, 'flow_groups'))).toBe(0);
});

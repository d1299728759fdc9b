import { expect, it } from 'vitest';
import { useTestSchema } from '../helpers/queue.js';

// claim_flow's statements, as a worker's connection plans them: once, at its first
// claim, over tables the planner has no statistics of (a queue fills faster than
// autovacuum analyzes it). Each must read by index in the order it needs, and walk
// only the groups the claim needs, not sort or scan a queue's tasks or groups.
const db = await useTestSchema('pgtq_explain_flow');

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}
const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];

it('claim_flow reads the top priority and the groups in turn by index, and sorts only what it takes', async () => {
  await db.rows("SELECT :schema.set_flow_limits('flow', 'sync', 5)");
  await db.rows(
    `SELECT :schema.push_many(jsonb_agg(jsonb_build_object('queue', 'flow', 'name', 'sync', 'group_key', 'g' || (i % 1000))))
     FROM generate_series(1, 20000) AS i`,
  );
  const client = await db.pool.connect();
  const plans: { text: string; plan: PlanNode[]; jit: boolean }[] = [];
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
    const claimed = await client.query(
      `SELECT * FROM "${db.schema}".claim_flow('flow', NULL, 110, 10, 500, gen_random_uuid(), 60000, 'w')`,
    );
    expect(claimed.rowCount).toBe(110);
  } finally {
    await client.query('RESET ALL');
    client.release();
  }
  const statement = (start: string) => {
    const found = plans.find((p) => p.text.trimStart().startsWith(start));
    if (!found) throw new Error(`no plan of "${start}…" among ${plans.length}`);
    return found.plan;
  };
  const all = plans.flatMap((p) => p.plan);
  // Never compiled: JIT takes longer than any claim, at each claim.
  expect(plans.filter((p) => p.jit).map((p) => p.text.slice(0, 40))).toEqual([]);
  expect(all.filter((node) => node['Node Type'] === 'Seq Scan').map((node) => node['Relation Name'])).toEqual(
    [],
  );

  // One statement reads the top priority, from the top of its index, and walks the
  // groups in turn order, no more of them than the claim needs (23 of 1,000 here:
  // 110 tasks, 5 from each, and one more).
  const walk = statement('WITH top AS');
  expect(walk.some((node) => node['Index Name'] === 'tasks_group_priority_idx')).toBe(true);
  const turns = walk.find((node) => node['Index Name'] === 'flow_groups_turn_idx');
  expect(turns?.['Actual Rows']).toBeLessThanOrEqual(30);
  // Nothing is sorted but the tasks of the groups taken (at most 23 × 5).
  const sorted = all
    .filter((node) => node['Node Type'].endsWith('Sort'))
    .map((node) => node['Actual Rows'] ?? 0);
  expect(Math.max(0, ...sorted)).toBeLessThanOrEqual(115);
});

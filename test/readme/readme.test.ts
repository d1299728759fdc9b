import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, expect, it, vi } from 'vitest';
import type { taskList } from '../../src/dashboard/reads.js';
import type { PgTq } from '../../src/index.js';
import { databaseUrl, dropSchema, uniqueSchemaName, waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The first ```ts block after `heading`. */
function codeAfter(heading: string): string {
  const section = readme.slice(readme.indexOf(heading));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error(`no ts block after ${heading}`);
  return match[1];
}

type TaskPage = Awaited<ReturnType<typeof taskList>>;

const schema = uniqueSchemaName('pgtq_readme');
/** A migrated schema of its own for the README's SQL. */
const db = await useTestSchema('pgtq_readme_sql');
afterAll(() => dropSchema(schema));

/**
 * Runs the first ts block after `heading` as a module, importing pgtq from src/, in the
 * README's schema; returns what it logged.
 */
async function runExample(heading: string, name: string, inSchema = db.schema): Promise<unknown[][]> {
  const file = new URL(`./${name}.generated.ts`, import.meta.url);
  const code = codeAfter(heading)
    .replace("from 'pgtq/testing'", "from '../../src/testing/index.js'")
    .replace("from 'pgtq'", "from '../../src/index.js'");
  writeFileSync(file, code);
  process.env.DATABASE_URL = databaseUrl();
  process.env.PGTQ_SCHEMA = inSchema;
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await import(file.href);
    return log.mock.calls;
  } finally {
    log.mockRestore();
    delete process.env.PGTQ_SCHEMA;
  }
}

it("the README's example runs as written", async () => {
  expect(await runExample('## Example', 'example', schema)).toEqual([[5], [5]]);
});

it("the README's task_history queries run on the view, and the first has the demo's columns", async () => {
  const section = readme.slice(readme.indexOf('## Tables and views'), readme.indexOf('## Operating pgtq'));
  const block = /```sql\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const statements = block
    .split(';')
    .map((statement) => statement.replace(/--.*$/gm, '').trim())
    .filter(Boolean);
  expect(statements).toHaveLength(3);
  const columns: string[][] = [];
  for (const statement of statements) {
    const result = await db.pool.query(statement.replaceAll('pgtq.', `"${db.schema}".`));
    columns.push(result.fields.map((field) => field.name));
  }
  expect(columns[0]).toEqual(['name', 'state', 'count', 'max_attempts', 'avg_wait_ms', 'avg_run_ms']);
});

it("the README's flow control example and SQL run as written", async () => {
  const logged = await runExample('## Flow control', 'flow');
  expect(logged.at(-1)?.[0]).toMatchObject({ paused: [], groups: [{ group_key: 'tenant:7' }] });
  const section = readme.slice(readme.indexOf('## Flow control'));
  const block = /```sql\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const statements = block.split(';').map((statement) => statement.replace(/--.*$/gm, '').trim());
  for (const statement of statements.filter(Boolean)) {
    await db.pool.query(statement.replaceAll('pgtq.', `"${db.schema}".`));
  }
  const [pushed] = await db.rows(
    "SELECT group_key FROM :schema.tasks WHERE args = '[42]' ORDER BY id DESC LIMIT 1",
  );
  expect(pushed).toEqual({ group_key: 'tenant:7' });
});

it("the README's HTTP tasks example and SQL run as written", async () => {
  const logged = await runExample('## HTTP tasks', 'http');
  expect(logged).toEqual([
    [
      {
        status: 200,
        headers: { 'content-type': 'application/json' },
        body: { welcomed: true },
        truncated: false,
      },
    ],
  ]);
  const section = readme.slice(readme.indexOf('## HTTP tasks'));
  const block = /```sql\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  const [pushed] = await db.rows<{ id: string }>(
    block.replaceAll('pgtq.', `"${db.schema}".`).replace(/;\s*$/, ''),
  );
  expect(Object.values(pushed ?? {})).toHaveLength(1);
  const [task] = await db.rows(
    "SELECT name, args FROM :schema.tasks WHERE queue = 'webhooks' ORDER BY id DESC LIMIT 1",
  );
  expect(task).toEqual({
    name: 'pgtq.http',
    args: [
      {
        url: 'https://hooks.example.com/signup',
        method: 'POST',
        body: { userId: 42 },
        headers: { 'x-source': 'signup' },
        timeoutMs: 10000,
      },
    ],
  });
});

it("the README's progress example runs as written", async () => {
  const logged = await runExample('## Progress', 'progress');
  expect(logged).toEqual([[{ done: 1000, total: 1000 }]]);
});

it("the README's dead letters example runs as written", async () => {
  const logged = await runExample('## Dead letters', 'dead-letters');
  expect(logged).toEqual([[7]]);
});

it("the README's undo example runs as written", async () => {
  const logged = await runExample('## Undo', 'undo');
  expect(logged).toEqual([[['ch_ada_500']]]);
});

it("the README's example of tasks that run after others runs as written", async () => {
  expect(await runExample('## Tasks that run after others', 'after')).toEqual([
    [['Ada-small.png', 'Ada-large.png']],
  ]);
});

it("the README's dashboard example serves the dashboard under its path and the app elsewhere", async () => {
  const file = new URL('./dashboard.generated.ts', import.meta.url);
  const free = createServer();
  await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
  const port = (free.address() as AddressInfo).port;
  await new Promise((resolve) => free.close(resolve));
  const code = codeAfter('### In your own server')
    .replace("from 'pgtq/dashboard'", "from '../../src/dashboard/index.js'")
    .replace("from 'pgtq'", "from '../../src/index.js'")
    .replace('server.listen(3000);', `server.listen(${port});`);
  writeFileSync(file, `${code}\nexport { admin, q, server };\n`);
  process.env.DATABASE_URL = databaseUrl();
  process.env.PGTQ_SCHEMA = db.schema;
  const example = (await import(file.href)) as { admin: { close(): Promise<void> }; q: PgTq; server: Server };
  try {
    await example.q.push('hello');
    const root = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${root}/admin/queue/healthz`).catch(() => null))?.ok);
    const { tasks } = (await (await fetch(`${root}/admin/queue/api/tasks?name=hello`)).json()) as TaskPage;
    expect(tasks).toEqual([expect.objectContaining({ queue: 'emails', name: 'hello', state: 'ready' })]);
    expect(await (await fetch(`${root}/signup`)).text()).toBe('the app');
  } finally {
    example.server.close();
    await example.admin.close();
    await example.q.close();
    delete process.env.PGTQ_SCHEMA;
  }
});

it("the README's metrics example feeds prom-client from the worker's events", async () => {
  const file = new URL('./metrics.generated.ts', import.meta.url);
  const code = codeAfter('### Metrics in your process').replace("from 'pgtq'", "from '../../src/index.js'");
  writeFileSync(file, `${code}\nexport { client, q, worker };\n`);
  process.env.DATABASE_URL = databaseUrl();
  process.env.PGTQ_SCHEMA = db.schema;
  const example = (await import(file.href)) as {
    client: typeof import('prom-client');
    q: PgTq;
    worker: { stop(): Promise<void> };
  };
  try {
    const metric = async (name: string) =>
      (await example.client.register.getSingleMetric(name)?.get())?.values ?? [];
    await waitFor(async () => (await metric('pgtq_tasks_ended_total')).length === 2, { timeoutMs: 10_000 });
    const ended = await metric('pgtq_tasks_ended_total');
    expect(ended.map((v) => [v.labels.outcome, v.value]).sort()).toEqual([
      ['failed', 1],
      ['succeeded', 1],
    ]);
    expect(ended.every((v) => v.labels.queue === 'emails' && v.labels.name === 'send_email')).toBe(true);
    expect((await metric('pgtq_tasks_started_total'))[0]?.value).toBe(2);
    const runCount = (await metric('pgtq_task_run_seconds')).find(
      (v) => (v as { metricName?: string }).metricName === 'pgtq_task_run_seconds_count',
    );
    expect(runCount?.value).toBe(2);
    const pickupSum = (await metric('pgtq_task_pickup_seconds')).find(
      (v) => (v as { metricName?: string }).metricName === 'pgtq_task_pickup_seconds_sum',
    );
    expect(pickupSum?.value).toBeGreaterThanOrEqual(0);
  } finally {
    await example.worker.stop();
    await example.q.close();
    example.client.register.clear();
    delete process.env.PGTQ_SCHEMA;
  }
});

it("the README's testing example pushes, runs and reports as its comments say", async () => {
  expect(await runExample('### Testing your handlers', 'testing')).toEqual([
    [[['send_welcome', ['ada@example.com']]]],
    [[['send_welcome', 'succeeded', { sent: 'ada@example.com' }]]],
  ]);
});

it("the README's task contract example pushes from the contract and runs in the handler that implements it", async () => {
  const logged = await runExample('### Task contracts', 'contracts');
  expect(logged).toEqual([[{ sent: 'ada@example.com' }]]);
});

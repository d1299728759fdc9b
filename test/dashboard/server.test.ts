import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DashboardServer, dashboard, serveDashboard } from '../../src/dashboard/index.js';
import type { failures, overview, taskDetail, taskList } from '../../src/dashboard/reads.js';
import { ConfigError, Fail, type PgTq } from '../../src/index.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_dashboard');
const TOKEN = 'correct horse battery staple';
const servers: DashboardServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(q: PgTq, options: Parameters<typeof serveDashboard>[1] = {}) {
  const served = await serveDashboard(q, { port: 0, ...options });
  servers.push(served);
  return served;
}

/** Pops the next task of `q` and fails it for good with `error`. */
async function failNext(q: PgTq, error: string): Promise<string> {
  const task = await q.pop();
  if (!task) throw new Error('nothing to pop');
  await task.fail(new Fail(error));
  return task.id;
}

type Overview = Awaited<ReturnType<typeof overview>>;
type TaskPage = Awaited<ReturnType<typeof taskList>>;
type Detail = Awaited<ReturnType<typeof taskDetail>>;
type Failures = Awaited<ReturnType<typeof failures>>;
type Done = { ok: true; message: string; retried?: number };

/** The JSON of an answer, as the type the page expects. */
async function json<T>(res: Response | Promise<Response>): Promise<T> {
  return (await (await res).json()) as T;
}

const post = (url: string, body: unknown = {}, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

describe('the dashboard API', () => {
  let q: PgTq;
  let base: string;
  beforeAll(async () => {
    q = db.queue('mail');
    base = (await serve(q)).url;
  });

  it('shows the counts the queue_summary view has, for every queue or one', async () => {
    await q.pushMany([
      { name: 'send', args: [1] },
      { name: 'send', args: [2] },
      { name: 'send', args: [3], delayMs: 60_000 },
    ]);
    await db.queue('images').push('resize', ['a.png']);
    await failNext(q, 'smtp down');
    const overview = await json<Overview>(fetch(`${base}api/overview`));
    const expected = await db.rows<{ queue: string; state: string; count: number }>(
      'SELECT queue, state::text, count::int FROM :schema.queue_summary AS s ORDER BY s.queue, s.state',
    );
    expect(
      overview.summary.map(({ queue, state, count }: (typeof expected)[0]) => ({ queue, state, count })),
    ).toEqual(expected);
    expect(overview.queues).toEqual(['images', 'mail']);
    const failedThisMinute = overview.throughput.reduce(
      (n: number, m: { failed: number }) => n + m.failed,
      0,
    );
    expect(failedThisMinute).toBe(1);
    const one = await json<Overview>(fetch(`${base}api/overview?queue=images`));
    expect(one.summary).toEqual([expect.objectContaining({ queue: 'images', state: 'ready', count: 1 })]);
  });

  it('lists tasks by filter, newest first, a page at a time by keyset', async () => {
    const refs = await db
      .queue('paged')
      .pushMany(
        Array.from({ length: 5 }, (_, i) => ({ name: 'p', args: [i], group: i % 2 ? 'odd' : 'even' })),
      );
    const ids = refs.map((r) => r.id).reverse();
    const first = await json<TaskPage>(fetch(`${base}api/tasks?queue=paged&limit=2`));
    expect(first.tasks.map((t: { id: string }) => t.id)).toEqual(ids.slice(0, 2));
    const second = await json<TaskPage>(fetch(`${base}api/tasks?queue=paged&limit=2&before=${first.next}`));
    const third = await json<TaskPage>(fetch(`${base}api/tasks?queue=paged&limit=2&before=${second.next}`));
    expect([...second.tasks, ...third.tasks].map((t: { id: string }) => t.id)).toEqual(ids.slice(2));
    expect(third.next).toBeNull();
    const odd = await json<TaskPage>(fetch(`${base}api/tasks?queue=paged&group=odd`));
    expect(odd.tasks.map((t) => t.args[0])).toEqual([3, 1]);
    const failed = await json<TaskPage>(fetch(`${base}api/tasks?state=failed&state=cancelled`));
    expect(failed.tasks.map((t: { state: string }) => t.state)).toEqual(['failed']);
    const bad = await fetch(`${base}api/tasks?state=lost`);
    expect(bad.status).toBe(400);
    expect((await json<{ error: string }>(bad)).error).toMatch(/unknown state "lost"/);
  });

  it('shows one task with the tasks it waits for and those waiting for it', async () => {
    const flows = db.queue('flows');
    const parent = await flows.push('extract', ['x']);
    const child = await flows.push('load', ['y'], { after: [parent] });
    const detail = await json<Detail>(fetch(`${base}api/tasks/${child.id}`));
    expect(detail.task).toMatchObject({ id: child.id, name: 'load', state: 'waiting', args: ['y'] });
    expect(detail.parents).toEqual([{ id: parent.id, name: 'extract', state: 'ready' }]);
    const up = await json<Detail>(fetch(`${base}api/tasks/${parent.id}`));
    expect(up.children).toEqual([{ id: child.id, name: 'load', state: 'waiting' }]);
    expect((await fetch(`${base}api/tasks/999999999`)).status).toBe(404);
    expect((await fetch(`${base}api/tasks/abc`)).status).toBe(400);
  });

  it('retries, cancels, reschedules and deletes tasks, and says what it did', async () => {
    const actions = db.queue('actions');
    await actions.push('boom', []);
    const failed = await failNext(actions, 'first line\nstack');
    const retry = await post(`${base}api/tasks/${failed}/retry`);
    expect(await json<Done>(retry)).toEqual({ ok: true, message: `task ${failed} is ready again` });
    expect((await actions.getTask(failed)).state).toBe('ready');
    const again = await post(`${base}api/tasks/${failed}/retry`);
    expect(again.status).toBe(409);

    const later = await actions.push('later', [], { delayMs: 60_000 });
    const runAt = new Date(Date.now() + 3_600_000);
    expect(
      (await post(`${base}api/tasks/${later.id}/reschedule`, { runAt: runAt.toISOString() })).status,
    ).toBe(200);
    expect((await actions.getTask(later.id)).run_at.getTime()).toBe(runAt.getTime());
    expect((await post(`${base}api/tasks/${later.id}/reschedule`, { runAt: 'soon' })).status).toBe(400);

    expect((await json<Done>(post(`${base}api/tasks/${later.id}/cancel`))).message).toBe(
      `task ${later.id} is cancelled`,
    );
    expect((await actions.getTask(later.id)).state).toBe('cancelled');
    expect((await post(`${base}api/tasks/${failed}/delete`)).status).toBe(200);
    await expect(actions.getTask(failed)).rejects.toThrow(/No task/);
    expect((await post(`${base}api/tasks/${failed}/explode`)).status).toBe(404);
  });

  it('lists failures grouped by name and first line, and retries a whole group', async () => {
    const batch = db.queue('batch');
    await batch.pushMany(Array.from({ length: 3 }, (_, i) => ({ name: 'import', args: [i] })));
    for (let i = 0; i < 3; i++) await failNext(batch, i < 2 ? 'timeout\nat line 1' : 'bad row');
    const { failures } = await json<Failures>(fetch(`${base}api/failures?queue=batch`));
    expect(failures.map((f: { error: string; count: number }) => [f.error, f.count]).sort()).toEqual([
      ['Fail: bad row', 1],
      ['Fail: timeout', 2],
    ]);
    const done = await json<Done>(
      post(`${base}api/failures/retry`, { queue: 'batch', name: 'import', error: 'Fail: timeout' }),
    );
    expect(done).toMatchObject({ ok: true, retried: 2 });
    expect(await batch.summary()).toEqual([expect.objectContaining({ state: 'ready', count: 2 })]);
  });

  it('pauses and resumes a queue', async () => {
    const pause = await json<Done>(post(`${base}api/queues/mail/pause`));
    expect(pause.message).toBe('queue mail is paused');
    expect((await json<Overview>(fetch(`${base}api/overview`))).paused).toEqual([
      expect.objectContaining({ queue: 'mail', name: null }),
    ]);
    expect((await json<Done>(post(`${base}api/queues/mail/resume`))).message).toBe('queue mail is resumed');
    expect((await post(`${base}api/queues/mail/pause`, { name: '' })).status).toBe(400);
    expect((await post(`${base}api/queues/%E0%A4%A/pause`)).status).toBe(400);
  });

  it('serves the page, /healthz and /metrics', async () => {
    const page = await fetch(base);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    expect(await page.text()).toMatch(/app\.js/);
    expect(await (await fetch(`${base}healthz`)).text()).toBe('ok\n');
    expect((await fetch(`${base}nothing-here`)).status).toBe(404);
  });
});

describe('/metrics', () => {
  it('counts what finished since it started, and gives gauges of now, in the Prometheus text format', async () => {
    const q = db.queue('metrics "quoted"');
    const { url } = await serve(q);
    expect(await (await fetch(`${url}metrics`)).text()).not.toMatch(/pgtq_tasks_finished_total\{/);
    await q.pushMany([
      { name: 'ok', args: [] },
      { name: 'ok', args: [] },
      { name: 'bad', args: [] },
    ]);
    for (const outcome of ['ok', 'ok', 'bad']) {
      const task = await q.pop();
      if (outcome === 'ok') await task?.complete(null);
      else await task?.fail(new Fail('no'));
    }
    await q.push('waiting', []);
    await new Promise((resolve) => setTimeout(resolve, 2_100)); // rows count once two seconds old
    const text = await (await fetch(`${url}metrics`)).text();
    const label = 'queue="metrics \\"quoted\\""';
    expect(text).toContain(`pgtq_tasks_finished_total{${label},name="ok",state="succeeded"} 2`);
    expect(text).toContain(`pgtq_tasks_finished_total{${label},name="bad",state="failed"} 1`);
    expect(text).toContain(`pgtq_tasks{${label},state="ready"} 1`);
    expect(text).toContain(`pgtq_task_run_seconds_bucket{${label},name="ok",le="+Inf"} 2`);
    expect(text).toContain(`pgtq_task_wait_seconds_count{${label},name="ok"} 2`);
    // a second scrape adds nothing new: counters never count a row twice
    const again = await (await fetch(`${url}metrics`)).text();
    expect(again).toContain(`pgtq_tasks_finished_total{${label},name="ok",state="succeeded"} 2`);
    // each histogram's buckets never decrease
    const counts = [
      ...again.matchAll(/pgtq_task_run_seconds_bucket\{[^}]*name="ok",le="[^"]+"\} (\d+)/g),
    ].map((m) => Number(m[1]));
    expect(counts.length).toBe(16);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
  });
});

describe('safety', () => {
  it('asks for the token everywhere but /healthz, and keeps it as a cookie once given', async () => {
    const { url } = await serve(db.queue('secret'), { token: TOKEN });
    expect((await fetch(`${url}api/overview`)).status).toBe(401);
    const page = await fetch(url);
    expect([page.status, page.headers.get('content-type')]).toEqual([401, 'text/plain; charset=utf-8']);
    expect(await page.text()).toMatch(/open it with \?token=/);
    expect((await fetch(`${url}metrics`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${url}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(
      200,
    );
    expect((await fetch(`${url}healthz`)).status).toBe(200);
    const opened = await fetch(`${url}?token=${encodeURIComponent(TOKEN)}`, { redirect: 'manual' });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe('/');
    const cookie = opened.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const withCookie = await fetch(`${url}api/overview`, {
      headers: { cookie: cookie.split(';')[0] as string },
    });
    expect(withCookie.status).toBe(200);
    expect((await fetch(`${url}?token=wrong`)).status).toBe(401);
  });

  it('refuses actions from another site, without a JSON body, or in read-only mode', async () => {
    const q = db.queue('guarded');
    const task = await q.push('t', []);
    const { url } = await serve(q);
    const foreign = await post(`${url}api/tasks/${task.id}/cancel`, {}, { origin: 'http://evil.example' });
    expect(foreign.status).toBe(403);
    const form = await fetch(`${url}api/tasks/${task.id}/cancel`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1',
    });
    expect(form.status).toBe(415);
    expect((await fetch(`${url}api/tasks/${task.id}/cancel`)).status).toBe(404); // never by GET
    expect((await q.getTask(task.id)).state).toBe('ready');

    const readOnly = await serve(q, { readOnly: true });
    expect((await json<{ readOnly: boolean }>(fetch(`${readOnly.url}api/config`))).readOnly).toBe(true);
    const refused = await post(`${readOnly.url}api/tasks/${task.id}/cancel`);
    expect(refused.status).toBe(403);
    expect((await q.getTask(task.id)).state).toBe('ready');
    const same = await post(`${url}api/tasks/${task.id}/cancel`, {}, { origin: url.replace(/\/$/, '') });
    expect(same.status).toBe(200);
  });

  it('refuses to listen beyond this machine without a token', async () => {
    await expect(serveDashboard(db.queue('x'), { host: '0.0.0.0', port: 0 })).rejects.toThrow(ConfigError);
    await expect(serveDashboard(db.queue('x'), { host: '0.0.0.0', port: 0 })).rejects.toThrow(
      /needs a token/,
    );
    expect(() => dashboard(db.queue('x'), { token: '' })).toThrow(ConfigError);
  });
});

describe('mounted in a server of the app', () => {
  it('serves under a base path, and leaves other paths to the app', async () => {
    const handle = dashboard(db.queue('mounted'), { basePath: '/admin/queue/' });
    const server = createServer((req, res) =>
      handle(req, res, () => res.writeHead(200, { 'content-type': 'text/plain' }).end('the app')),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const root = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const bare = await fetch(`${root}/admin/queue`, { redirect: 'manual' });
      expect(bare.headers.get('location')).toBe('/admin/queue/');
      expect((await fetch(`${root}/admin/queue/api/overview`)).status).toBe(200);
      expect(await (await fetch(`${root}/somewhere`)).text()).toBe('the app');
    } finally {
      server.close();
      await handle.close();
    }
  });

  it('opens a pool of its own from connection options, and closes it', async () => {
    const handle = dashboard({ connectionString: db.url, schema: db.schema });
    const server = createServer((req, res) => handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      expect((await fetch(`http://127.0.0.1:${port}/api/overview`)).status).toBe(200);
    } finally {
      server.close();
      await handle.close();
    }
  });
});

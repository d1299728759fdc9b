import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DashboardServer, serveDashboard } from '../../src/dashboard/index.js';
import { Fail, PgTq, type Worker } from '../../src/index.js';
import { cli, described, lines, pgtq } from '../helpers/cli.js';
import { databaseUrl, uniqueSchemaName, waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

// The dashboard's page in a real browser (Debian's Chromium, driven by playwright-core), over
// the in-process server and over `pgtq dashboard`. With PGTQ_SCREENSHOTS=1 the last test also
// writes the README's screenshots to test/e2e/screenshots/.

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));
const PENDING = ['scheduled', 'ready', 'running', 'waiting'] as const;
const TEST_MS = 60_000;
const WAIT_MS = 15_000;

const db = await useTestSchema('pgtq_e2e_dashboard');
// The screenshots show a database of their own, with the default schema and the demo's queues only.
const demo = await useDemoDatabase();
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };

let browser: Browser;
let served: DashboardServer;
const servers: DashboardServer[] = [];
const workers: Worker[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `the dashboard's browser tests need Debian's Chromium at ${CHROMIUM}, and it is missing: apt-get install -y chromium`,
    );
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  served = await serve(db.queue('dashboard'));
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all(servers.map((s) => s.close()));
  await browser?.close();
});

async function serve(q: PgTq, options: Parameters<typeof serveDashboard>[1] = {}) {
  const server = await serveDashboard(q, { port: 0, ...options });
  servers.push(server);
  return server;
}

interface Opened {
  page: Page;
  /** alert(), confirm() and prompt() calls: none is expected, ever. */
  dialogs: string[];
  /** Uncaught errors of the page's script and errors it logged (a CSP refusal, a failed load). */
  problems: string[];
  /** The POSTs the page sent, as paths. */
  posts: string[];
}

/** A fresh browser context on `url` (with its #route), once its view has rendered its data. */
async function open(
  url: string,
  { colorScheme = 'light' }: { colorScheme?: 'light' | 'dark' } = {},
): Promise<Opened> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, colorScheme });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  const opened: Opened = { page, dialogs: [], problems: [], posts: [] };
  page.on('dialog', (dialog) => {
    opened.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => opened.problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') opened.problems.push(`console: ${message.text()}`);
  });
  page.on('request', (request) => {
    if (request.method() === 'POST') opened.posts.push(new URL(request.url()).pathname);
  });
  await page.goto(url);
  await rendered(page);
  return opened;
}

/** Waits for `document.body.dataset.ready`, which the page sets once a view has drawn its data. */
const rendered = (page: Page) => page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });

/** Goes to another #route in the same page and waits for its data. */
async function go(page: Page, route: string): Promise<void> {
  await page.evaluate(`document.body.dataset.ready = 'false'; location.hash = ${JSON.stringify(route)}`);
  await rendered(page);
}

/** Pops the next task of `q` named `name` and fails it for good with `error`. */
async function failNext(q: PgTq, name: string, error: string): Promise<string> {
  const task = await q.pop({ names: [name] });
  if (!task) throw new Error(`no ${name} task to pop`);
  await task.fail(new Fail(error));
  return task.id;
}

/** A task of `q` failed for good with `error`, and the error text as stored. */
async function failedTask(q: PgTq, name: string, args: unknown[], error: string) {
  await q.push(name, args);
  const id = await failNext(q, name, error);
  const task = await q.getTask(id);
  expect(task.state).toBe('failed');
  return { id, error: task.error ?? '' };
}

/** The first URL a `pgtq dashboard` process prints, once it serves. */
async function cliDashboard(args: string[]) {
  const run = startNode([cli, 'dashboard', '--port', '0', ...args], env, { timeoutMs: 45_000 });
  const port = await waitFor(() => run.output().match(/^http:\/\/[^\n]*:(\d+)\/\n$/)?.[1], {
    timeoutMs: WAIT_MS,
  });
  return { run, url: `http://127.0.0.1:${port}/` };
}

/**
 * A database of its own (dropped after the file) with pgtq in its default schema, `pgtq`, as a
 * user would have it: a queue factory and direct SQL, with `:schema` for the schema.
 */
async function useDemoDatabase() {
  const name = uniqueSchemaName('pgtq_e2e_screenshots');
  const admin = new pg.Client({ connectionString: databaseUrl() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
  await admin.end();
  const url = new URL(databaseUrl());
  url.pathname = `/${name}`;
  const connectionString = url.toString();
  const queues: PgTq[] = [];
  const queue = (queueName: string) => {
    const q = new PgTq(queueName, { connectionString, schema: 'pgtq' });
    queues.push(q);
    return q;
  };
  const pool = new pg.Pool({ connectionString, max: 2 });
  await queue('migrations').migrate();
  afterAll(async () => {
    await Promise.all(queues.map((q) => q.close()));
    await pool.end();
    const dropping = new pg.Client({ connectionString: databaseUrl() });
    await dropping.connect();
    await dropping.query(`DROP DATABASE IF EXISTS ${dropping.escapeIdentifier(name)} WITH (FORCE)`);
    await dropping.end();
  });
  const rows = async <R extends pg.QueryResultRow>(sql: string, values: unknown[] = []) =>
    (await pool.query<R>(sql.replaceAll(':schema', 'pgtq'), values)).rows;
  return { queue, rows };
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe('the dashboard page', () => {
  it(
    'shows the counts of the queue_summary view, updates them without a reload, and draws the chart',
    async () => {
      const shop = db.queue('shop');
      const parent = await shop.push('export-orders', ['2024-05']);
      await shop.pushMany([
        ...Array.from({ length: 5 }, (_, i) => ({ name: 'charge-card', args: [{ order: 1000 + i }] })),
        { name: 'send-invoice', args: [{ order: 990 }], delayMs: 600_000 },
        { name: 'send-invoice', args: [{ order: 991 }], delayMs: 900_000 },
        { name: 'refund', args: [{ order: 977 }] },
      ]);
      await shop.push('import-orders', ['2024-05'], { after: [parent] });
      // A claimed task stays running for as long as its lease.
      expect(await shop.pop({ names: ['charge-card'], leaseMs: 120_000 })).not.toBeNull();
      await failNext(shop, 'refund', 'card network unreachable');
      await db.queue('mail').push('welcome', ['ana@example.com']);

      const { page, problems } = await open(served.url);
      const cells = async () =>
        Object.fromEntries(
          await page
            .locator('[data-testid^="count-"]')
            .evaluateAll((nodes) =>
              nodes.map((n) => [n.getAttribute('data-testid') ?? '', (n.textContent ?? '').trim()]),
            ),
        );
      const summary = async () =>
        db.rows<{ queue: string; state: string; count: number }>(
          'SELECT queue, state::text, count::int FROM :schema.queue_summary',
        );
      const expected: Record<string, string> = {};
      for (const queue of ['mail', 'shop'])
        for (const state of PENDING) expected[`count-${queue}-${state}`] = '0';
      for (const row of await summary()) expected[`count-${row.queue}-${row.state}`] = String(row.count);
      expect(await cells()).toEqual(expected);
      // Every pending state of the seeded queue counts something, so a column shown in the wrong place fails.
      expect(expected).toMatchObject({
        'count-shop-ready': '5',
        'count-shop-running': '1',
        'count-shop-scheduled': '2',
        'count-shop-waiting': '1',
      });

      await page.evaluate('window.pgtqNotReloaded = true');
      await shop.pushMany(
        Array.from({ length: 3 }, (_, i) => ({ name: 'charge-card', args: [{ order: 2000 + i }] })),
      );
      const ready = (await summary()).find((r) => r.queue === 'shop' && r.state === 'ready')?.count;
      expect(ready).toBe(8);
      await expect
        .poll(() => page.locator('[data-testid="count-shop-ready"]').textContent(), { timeout: WAIT_MS })
        .toBe(String(ready));
      expect(await page.evaluate('window.pgtqNotReloaded')).toBe(true);

      const chart = page.locator('svg[data-testid=throughput-chart]');
      await expect.poll(() => chart.isVisible()).toBe(true);
      // The refund failed this minute: one bar of failures, at the right end.
      expect(await chart.locator('rect.ko').count()).toBe(1);
      expect(await chart.locator('desc').textContent()).toMatch(/\b0 succeeded and 1 failed\b/);
      expect(problems).toEqual([]);
    },
    TEST_MS,
  );

  it(
    "shows a failed task's state and its whole error, every line of it",
    async () => {
      const q = db.queue('billing');
      const failed = await failedTask(
        q,
        'charge-card',
        [{ order: 4411, amount: 129.9 }],
        'card declined\ncode: insufficient_funds',
      );
      expect(failed.error.split('\n').length).toBeGreaterThan(2);

      const { page, problems } = await open(`${served.url}#/tasks/${failed.id}`);
      const detail = page.locator('[data-testid=task-detail]');
      expect(await detail.locator('[data-testid=task-state]').textContent()).toBe('failed');
      expect(await detail.locator('pre[data-testid=task-error]').textContent()).toBe(failed.error);
      // As laid out, not only as text: a stylesheet that folded the lines would fail here.
      // biome-ignore lint/performance/useDomNodeTextContent: the rendered lines are what is checked
      expect(await detail.locator('pre[data-testid=task-error]').innerText()).toContain(
        'Fail: card declined\ncode: insufficient_funds\n',
      );
      expect(JSON.parse((await detail.locator('pre[data-testid=task-args]').textContent()) ?? '')).toEqual([
        { order: 4411, amount: 129.9 },
      ]);
      expect(problems).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'retries a failed task once the dialog is confirmed, and does nothing when it is cancelled',
    async () => {
      const q = db.queue('billing');
      const failed = await failedTask(q, 'charge-card', [{ order: 4412 }], 'gateway timeout\nafter 30 s');
      const { page, problems, posts } = await open(`${served.url}#/tasks/${failed.id}`);
      const dialog = page.locator('dialog[data-testid=confirm]');

      // Cancelled: no request, the task stays failed.
      await page.locator('[data-action=retry]').click();
      await dialog.waitFor({ state: 'visible' });
      expect(await dialog.textContent()).toContain(`Retry task ${failed.id}`);
      await dialog.locator('[data-testid=confirm-no]').click();
      await dialog.waitFor({ state: 'hidden' });
      expect(posts).toEqual([]);
      expect((await q.getTask(failed.id)).state).toBe('failed');

      // Confirmed: the task is ready again, and the status line says what the server said.
      await page.locator('[data-action=retry]').click();
      await dialog.waitFor({ state: 'visible' });
      const answer = page.waitForResponse((r) => r.request().method() === 'POST');
      await dialog.locator('[data-testid=confirm-yes]').click();
      const response = await answer;
      expect(response.status()).toBe(200);
      const { message } = (await response.json()) as { message: string };
      expect(message).toBe(`task ${failed.id} is ready again`);
      await expect.poll(() => page.locator('[data-testid=status]').textContent()).toBe(message);
      expect((await q.getTask(failed.id)).state).toBe('ready');
      expect(posts).toEqual([`/api/tasks/${failed.id}/retry`]);
      await expect.poll(() => page.locator('[data-testid=task-state]').textContent()).toBe('ready');
      expect(await page.locator('[data-action=retry]').count()).toBe(0);

      // Another action, cancelled in its dialog: still ready, still one POST only.
      await page.locator('[data-action=cancel]').click();
      await dialog.waitFor({ state: 'visible' });
      expect(await dialog.textContent()).toContain(`Cancel task ${failed.id}`);
      await dialog.locator('[data-testid=confirm-no]').click();
      await dialog.waitFor({ state: 'hidden' });
      await page.waitForTimeout(300);
      expect(posts).toHaveLength(1);
      expect((await q.getTask(failed.id)).state).toBe('ready');
      expect(await page.locator('[data-testid=task-state]').textContent()).toBe('ready');
      expect(problems).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'shows markup in arguments and errors as text: no element made of it, no script run',
    async () => {
      const q = db.queue('comments');
      const img = '<img src=x onerror=alert(1)>';
      const script = '<script>alert(2)</script>';
      const failed = await failedTask(
        q,
        'render-comment',
        [{ body: img, footer: script }],
        `${img} ${script}`,
      );

      const { page, dialogs, problems } = await open(`${served.url}#/tasks/${failed.id}`);
      const detail = page.locator('[data-testid=task-detail]');
      const args = (await detail.locator('pre[data-testid=task-args]').textContent()) ?? '';
      expect(args).toContain(img);
      expect(args).toContain(script);
      expect(await detail.locator('pre[data-testid=task-error]').textContent()).toContain(`${img} ${script}`);
      expect(await detail.locator('img').count()).toBe(0);
      expect(await detail.locator('script').count()).toBe(0);
      // The failures page shows the error's first line, in a table cell.
      await go(page, '#/failures?queue=comments');
      expect(await page.locator('main').textContent()).toContain(img);
      expect(await page.locator('main img, main script').count()).toBe(0);
      // An onerror handler would have run by now (x fails to load at once).
      await page.waitForTimeout(300);
      expect(dialogs).toEqual([]);
      expect(problems).toEqual([]);
    },
    TEST_MS,
  );

  it(
    'is refused, by `pgtq dashboard`, on an address reachable from other machines without a token',
    async () => {
      const refused = await pgtq(['dashboard', '--host', '0.0.0.0', '--port', '0'], env);
      expect(refused.code, described(refused)).toBe(2);
      expect(lines(refused.stderr)).toEqual([expect.stringMatching(/0\.0\.0\.0.*needs a token/)]);
      expect(refused.stdout).toBe('');

      const token = 'tr0ub4dor&3';
      await db.queue('reports').push('build-report', [{ month: '2024-05' }]);
      const [reports] = await db.rows<{ count: number }>(
        "SELECT count::int FROM :schema.queue_summary WHERE queue = 'reports' AND state = 'ready'",
      );
      const { run, url } = await cliDashboard(['--host', '0.0.0.0', '--token', token]);
      const without = await fetch(url);
      expect(without.status).toBe(401);
      const { page, problems } = await open(`${url}?token=${encodeURIComponent(token)}#/`);
      // The token became a cookie and left the address.
      expect(new URL(page.url()).search).toBe('');
      expect(await page.locator('[data-testid="count-reports-ready"]').textContent()).toBe(
        String(reports?.count),
      );
      expect(await page.locator('svg[data-testid=throughput-chart]').count()).toBe(1);
      expect(problems).toEqual([]);
      run.child.kill('SIGTERM');
      const stopped = await run.finished;
      expect(stopped.code, described(stopped)).toBe(0);
    },
    TEST_MS,
  );

  it(
    'shows no action in read-only mode (`pgtq dashboard --read-only`), and refuses them',
    async () => {
      const q = db.queue('billing');
      const failed = await failedTask(q, 'charge-card', [{ order: 4413 }], 'card expired');
      await q.pause('refund');
      const { run, url } = await cliDashboard(['--read-only']);

      const { page, problems, posts } = await open(`${url}#/tasks/${failed.id}`);
      expect(await page.locator('[data-testid=task-state]').textContent()).toBe('failed');
      expect(await page.locator('[data-action]').count()).toBe(0);
      expect(await page.locator('.badge.readonly').textContent()).toBe('read-only');
      await go(page, '#/');
      expect(await page.locator('[data-testid="count-billing-ready"]').count()).toBe(1);
      // A paused name would have a Resume button, and each queue a Pause button.
      expect(await page.locator('main').textContent()).toContain('refund');
      expect(await page.locator('[data-action]').count()).toBe(0);
      await go(page, '#/failures');
      expect(await page.locator('main').textContent()).toContain('card expired');
      expect(await page.locator('[data-action]').count()).toBe(0);
      expect(posts).toEqual([]);

      const retry = await fetch(`${url}api/tasks/${failed.id}/retry`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
      expect(retry.status).toBe(403);
      expect(await retry.json()).toEqual({ error: expect.stringMatching(/read-only/) });
      expect((await q.getTask(failed.id)).state).toBe('failed');
      expect(problems).toEqual([]);
      await q.resume('refund');
      run.child.kill('SIGTERM');
      expect((await run.finished).code).toBe(0);
    },
    TEST_MS,
  );

  it(
    'makes the screenshots of the README: overview and a failed task, light and dark',
    async () => {
      const failedId = await seedDemo();
      const server = await serve(demo.queue('emails'));
      const shots: Record<string, Buffer> = {};
      for (const scheme of ['light', 'dark'] as const) {
        const { page, problems } = await open(server.url, { colorScheme: scheme });
        // Every section filled: the chart's bars, the worker, its running task with its progress.
        await page.locator('svg[data-testid=throughput-chart] rect.ok').first().waitFor();
        await expect.poll(() => page.locator('main').textContent()).toContain('resize');
        await expect.poll(() => page.locator('main').textContent()).toContain('"done":');
        shots[`overview-${scheme}`] = await page.screenshot({ fullPage: true, animations: 'disabled' });
        await go(page, `#/tasks/${failedId}`);
        expect(await page.locator('pre[data-testid=task-error]').textContent()).toContain(
          'Error: SMTP 550: mailbox unavailable',
        );
        shots[`task-${scheme}`] = await page.screenshot({ fullPage: true, animations: 'disabled' });
        expect(problems).toEqual([]);
      }
      for (const [name, png] of Object.entries(shots)) {
        expect(png.subarray(0, 8).equals(PNG_SIGNATURE), name).toBe(true);
        // IHDR: the width, then the height.
        expect(png.readUInt32BE(16), name).toBe(1280);
        expect(png.readUInt32BE(20), name).toBeGreaterThanOrEqual(600);
        expect(png.length, name).toBeGreaterThan(20_000);
      }
      if (process.env.PGTQ_SCREENSHOTS === '1') {
        await mkdir(SCREENSHOTS, { recursive: true });
        for (const [name, png] of Object.entries(shots)) await writeFile(`${SCREENSHOTS}${name}.png`, png);
      }
    },
    TEST_MS,
  );
});

/** A small pseudo-random sequence, the same on every run. */
function sequence(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

const SMTP_ERROR = [
  'Error: SMTP 550: mailbox unavailable',
  '    at SMTPConnection._formatError (node_modules/nodemailer/lib/smtp-connection/index.js:798:19)',
  '    at SMTPConnection._actionRCPT (node_modules/nodemailer/lib/smtp-connection/index.js:1682:28)',
  '    at SMTPConnection.<anonymous> (node_modules/nodemailer/lib/smtp-connection/index.js:1635:30)',
  '    at SMTPConnection._processResponse (node_modules/nodemailer/lib/smtp-connection/index.js:982:20)',
  '    at async sendReceipt (src/jobs/emails.ts:41:5)',
].join('\n');
const IMAGE_ERROR = [
  'Error: Input buffer contains unsupported image format',
  '    at Sharp.toBuffer (node_modules/sharp/lib/output.js:163:17)',
  '    at async thumbnail (src/jobs/images.ts:27:18)',
].join('\n');
const TIMEOUT_ERROR = [
  'TimeoutError: upload to s3://acme-media/thumbnails timed out after 30000 ms',
  '    at async thumbnail (src/jobs/images.ts:34:3)',
].join('\n');

/**
 * The demo's queues: an hour of history (inserted as finished rows, so the chart has bars), a few
 * tasks ready and scheduled, and a worker running one slow task. Returns a failed task's id.
 */
async function seedDemo(): Promise<string> {
  const random = sequence(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const people = ['ana.lima', 'j.okafor', 'mei.tanaka', 'lars.berg', 'priya.n', 'tom.hughes', 'sofia.r'];
  const photos = ['IMG_2041.jpg', 'beach.png', 'avatar-88.webp', 'DSC00417.jpg', 'banner@2x.png'];
  const history: Record<string, unknown>[] = [];
  for (let minute = 0; minute < 60; minute++) {
    // A load that rises and falls over the hour.
    const load = 1 + Math.round(4 * Math.abs(Math.sin(minute / 9)));
    for (let i = 0; i < load + Math.floor(random() * 4); i++) {
      history.push({
        queue: 'emails',
        name: pick(['send-welcome', 'send-receipt', 'send-receipt', 'send-digest']),
        args: [{ to: `${pick(people)}@example.com` }],
        state: 'succeeded',
        ago_ms: minute * 60_000 + Math.floor(random() * 59_000),
        run_ms: 200 + Math.floor(random() * 900),
        error: null,
      });
    }
    for (let i = 0; i < Math.floor(random() * 3); i++) {
      history.push({
        queue: 'images',
        name: pick(['resize', 'thumbnail']),
        args: [{ file: pick(photos), width: pick([320, 640, 1280]) }],
        state: 'succeeded',
        ago_ms: minute * 60_000 + Math.floor(random() * 59_000),
        run_ms: 1_500 + Math.floor(random() * 6_000),
        error: null,
      });
    }
    if (random() < 0.18) {
      const email = random() < 0.6;
      history.push({
        queue: email ? 'emails' : 'images',
        name: email ? 'send-receipt' : 'thumbnail',
        args: email ? [{ to: `${pick(people)}@example.com` }] : [{ file: pick(photos), width: 320 }],
        state: 'failed',
        ago_ms: minute * 60_000 + Math.floor(random() * 59_000),
        run_ms: 300 + Math.floor(random() * 2_000),
        error: email ? SMTP_ERROR : pick([IMAGE_ERROR, TIMEOUT_ERROR]),
      });
    }
  }
  // The hour may begin yesterday: its partition too.
  await demo.rows("SELECT :schema.create_history_partitions((now() - interval '1 day')::date, 3)");
  const insert = (rows: Record<string, unknown>[]) =>
    demo.rows<{ id: string }>(
      `INSERT INTO :schema.finished_tasks (id, queue, name, args, state, priority, run_at, attempts,
                                          max_attempts, created_at, started_at, finished_at, error, worker_id)
       SELECT nextval(':schema.task_id_seq'), r.queue, r.name, r.args, r.state:::schema.task_state, 0,
              f.at - make_interval(secs => (r.run_ms + 400) / 1000.0), r.attempts, 5,
              f.at - make_interval(secs => coalesce(r.age_ms, r.run_ms + 900) / 1000.0),
              f.at - make_interval(secs => r.run_ms / 1000.0), f.at, r.error, r.worker_id
       FROM jsonb_to_recordset($1::jsonb) AS r(queue text, name text, args jsonb, state text, ago_ms int,
                                              run_ms int, age_ms int, attempts int, error text, worker_id text),
            LATERAL (SELECT now() - make_interval(secs => r.ago_ms / 1000.0) AS at) AS f
       RETURNING id::text AS id`,
      [JSON.stringify(rows)],
    );
  const worker = (n: number) => `worker-${n}:${4100 + n * 13}:${(0x3f9a1c + n * 977).toString(16)}`;
  await insert(history.map((row, n) => ({ attempts: row.error ? 5 : 1, worker_id: worker(n % 3), ...row })));
  const [failed] = await insert([
    {
      queue: 'emails',
      name: 'send-receipt',
      args: [{ to: 'mei.tanaka@example.com', order: 'A-10482', locale: 'en-GB' }],
      state: 'failed',
      ago_ms: 95_000,
      run_ms: 1_240,
      // Five attempts, with back-off between them.
      age_ms: 31 * 60_000,
      attempts: 5,
      error: SMTP_ERROR,
      worker_id: worker(1),
    },
  ]);
  if (!failed) throw new Error('no failed task inserted');

  const emails = demo.queue('emails');
  const ago = (ms: number) => new Date(Date.now() - ms);
  await emails.pushMany([
    ...people.slice(0, 4).map((p, i) => ({
      name: 'send-welcome',
      args: [{ to: `${p}@example.com` }],
      runAt: ago(4_000 + i * 1_500),
    })),
    ...[15, 30, 45].map((min) => ({
      name: 'send-digest',
      args: [{ list: 'weekly', segment: `part-${min / 15}` }],
      delayMs: min * 60_000,
    })),
  ]);
  // Paused while a template is fixed: the Paused section has a row.
  await emails.pause('send-digest');
  const images = demo.queue('images');
  const slow = await images.push('resize', [{ file: 'DSC00417.jpg', width: 2560 }]);
  await images.push('thumbnail', [{ file: 'DSC00417.jpg', width: 320 }], { after: [slow] });
  await images.push('resize', [{ file: 'banner@2x.png', width: 1280 }], { delayMs: 20 * 60_000 });

  const running = demo.queue('images');
  running.handler({ name: 'resize' }, async function () {
    this.progress({ done: 37, total: 120 });
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 60_000);
      this.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  });
  const imageWorker = running.worker({ concurrency: 2, leaseMs: 3_000, shutdownGraceMs: 0 });
  workers.push(imageWorker);
  await imageWorker.start();
  await waitFor(async () => (await running.getTask(slow.id)).progress !== null, { timeoutMs: WAIT_MS });
  return failed.id;
}

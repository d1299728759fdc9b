import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  type HttpResponse,
  type PgTq,
  ValidationError,
  verifyHttpSignature,
  type WorkerOptions,
} from '../../src/index.js';
import { cli } from '../helpers/cli.js';
import { waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';
import { useServices } from '../helpers/services.js';

// HTTP tasks against a real HTTP server on this machine, run by real workers.
const db = await useTestSchema('pgtq_http');
const services = useServices();

/** Every request the server received: its path, when, its headers and body. */
interface Received {
  path: string;
  at: number;
  headers: IncomingMessage['headers'];
  body: string;
}
const received: Received[] = [];
/** What the server answers on a path, by the number of calls so far (0 first). */
const answers = new Map<string, (call: number, res: ServerResponse) => void>();
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (chunk: Buffer) => {
    body += chunk.toString();
  });
  req.on('end', () => {
    const path = req.url ?? '/';
    const call = received.filter((r) => r.path === path).length;
    received.push({ path, at: Date.now(), headers: req.headers, body });
    const answer = answers.get(path);
    if (answer) answer(call, res);
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('no such path');
  });
});
let base = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const calls = (path: string) => received.filter((r) => r.path === path);
const fast = { backoff: { baseMs: 20, jitter: 0 } };
/** A worker with `http`, and a scheduler, which makes retries ready when they are due. */
const startWorker = async (q: PgTq, http: WorkerOptions['http']) => {
  await services.start(q.scheduler());
  return services.start(q.worker({ http }));
};
const finished = async (id: string) =>
  waitFor(async () => {
    const [row] = await db.rows<{
      state: string;
      attempts: number;
      result: HttpResponse | null;
      error: string;
    }>('SELECT state::text, attempts, result, error FROM :schema.finished_tasks WHERE id = $1', [id]);
    return row;
  });

describe('a worker with `http` calls the URL', () => {
  it('500, 500, 200: three calls, then succeeded with the status, kept headers and the JSON body', async () => {
    const q = db.queue('retries');
    answers.set('/flaky', (call, res) => {
      if (call < 2) res.writeHead(500).end('busy');
      else res.writeHead(200, { 'content-type': 'application/json', etag: '"v1"' }).end('{"ok":true}');
    });
    await startWorker(q, fast);
    const ref = await q.pushHttp({ url: `${base}/flaky`, body: { userId: 42 } });
    expect(await ref.result()).toEqual({
      status: 200,
      headers: { 'content-type': 'application/json', etag: '"v1"' },
      body: { ok: true },
      truncated: false,
    });
    expect(calls('/flaky')).toHaveLength(3);
    expect((await finished(ref.id)).attempts).toBe(3);
    const [first] = calls('/flaky');
    expect(first?.body).toBe('{"userId":42}');
    expect(first?.headers['content-type']).toBe('application/json');
    expect(first?.headers['pgtq-task-id']).toBe(ref.id);
    expect(calls('/flaky').map((c) => c.headers['pgtq-attempt'])).toEqual(['1', '2', '3']);
  });

  it('429 with Retry-After: 1 waits a second before the next call', async () => {
    const q = db.queue('retry-after');
    answers.set('/limited', (call, res) => {
      if (call === 0) res.writeHead(429, { 'retry-after': '1' }).end();
      else res.writeHead(204).end();
    });
    await startWorker(q, fast);
    const ref = await q.pushHttp({ url: `${base}/limited`, method: 'PUT' });
    expect((await ref.result()).status).toBe(204);
    const [first, second] = calls('/limited');
    expect(second && first && second.at - first.at).toBeGreaterThanOrEqual(950);
  });

  it('404: failed after one call, with the status and the body in the error', async () => {
    const q = db.queue('not-found');
    await startWorker(q, fast);
    const ref = await q.pushHttp({ url: `${base}/missing?token=secret`, method: 'GET' });
    const row = await finished(ref.id);
    expect(row).toMatchObject({ state: 'failed', attempts: 1 });
    expect(row.error).toMatch(
      /^Fail: GET http:\/\/127\.0\.0\.1:\d+\/missing answered 404 Not Found: no such path/,
    );
    expect(row.error).not.toContain('secret');
    expect(calls('/missing?token=secret')).toHaveLength(1);
  });

  it('a server that does not answer is cut off by the timeout, and the attempt counts as failed', async () => {
    const q = db.queue('hanging');
    answers.set('/hang', () => {});
    await startWorker(q, fast);
    const ref = await q.pushHttp({ url: `${base}/hang`, timeoutMs: 200 }, { maxAttempts: 2 });
    const row = await finished(ref.id);
    expect(row).toMatchObject({ state: 'failed', attempts: 2 });
    expect(row.error).toMatch(/POST http:\/\/127\.0\.0\.1:\d+\/hang: no answer within 200 ms/);
    expect(calls('/hang')).toHaveLength(2);
  });

  it('signs the body with the worker’s secret, which the receiver verifies; the secret is stored nowhere', async () => {
    const q = db.queue('signed');
    const secret = 'a-secret-of-the-worker-only';
    answers.set('/signed', (_, res) => res.writeHead(200).end());
    await services.start(
      q.worker({ http: { signingSecret: secret, headers: { authorization: 'Bearer t0k3n' } } }),
    );
    const ref = await q.pushHttp({ url: `${base}/signed`, body: { event: 'signup' } });
    await ref.result();
    const [call] = calls('/signed');
    const signature = call?.headers['pgtq-signature'] as string;
    expect(verifyHttpSignature(secret, signature, call?.body ?? '')).toBe(true);
    expect(verifyHttpSignature('another-secret-entirely', signature, call?.body ?? '')).toBe(false);
    expect(verifyHttpSignature(secret, signature, '{"event":"tampered"}')).toBe(false);
    expect(verifyHttpSignature(secret, signature, call?.body ?? '', { now: Date.now() + 600_000 })).toBe(
      false,
    );
    expect(call?.headers.authorization).toBe('Bearer t0k3n');
    const stored = await db.rows('SELECT * FROM :schema.all_tasks WHERE id = $1', [ref.id]);
    expect(JSON.stringify(stored)).not.toMatch(/a-secret-of-the-worker-only|t0k3n/);
  });

  it('refuses a host outside http.allowHosts without calling it, and follows no redirect', async () => {
    const q = db.queue('allow');
    answers.set('/moved', (_, res) => res.writeHead(302, { location: 'http://elsewhere.example/' }).end());
    await services.start(q.worker({ http: { allowHosts: ['127.0.0.1', '*.example.com'] } }));
    const outside = await q.pushHttp({ url: 'http://localhost:1/x' });
    const moved = await q.pushHttp({ url: `${base}/moved` });
    expect(await finished(outside.id)).toMatchObject({ state: 'failed', attempts: 1 });
    expect((await finished(outside.id)).error).toMatch(/localhost is not in this worker's http\.allowHosts/);
    expect(await finished(moved.id)).toMatchObject({ state: 'failed', attempts: 1 });
    expect((await finished(moved.id)).error).toMatch(/answered 302/);
  });

  it('a worker without `http` leaves HTTP tasks to one that has it', async () => {
    const q = db.queue('mixed');
    answers.set('/later', (_, res) => res.writeHead(200).end());
    q.handler({ name: 'other' }, async () => {});
    await services.start(q.worker());
    const ref = await q.pushHttp({ url: `${base}/later` });
    const other = await q.push('other');
    await other.result();
    expect((await q.getTask(ref.id)).state).toBe('ready');
    await services.start(db.queue('mixed').worker({ http: true }));
    expect((await ref.result()).status).toBe(200);
  });
});

describe('pushing HTTP tasks', () => {
  it('refuses what is not an http(s) request with a typed error, and stores nothing', async () => {
    const q = db.queue('bad-http');
    const refused = [
      [{ url: 'ftp://example.com/file' }, /expected an http: or https: URL/],
      [{ url: 'file:///etc/passwd' }, /expected an http: or https: URL/],
      [{ url: 'not a url' }, /expected an http: or https: URL/],
      [{ url: 'https://example.com', body: { at: new Date() } }, /body/],
      [{ url: 'https://example.com', method: 'GET', body: {} }, /a GET or HEAD request has no body/],
      [{ url: 'https://example.com', method: 'TRACE' }, /method/],
      [{ url: 'https://example.com', headers: { 'x-a': 'b\r\nx-injected: 1' } }, /CR, LF or NUL/],
      [{ url: 'https://example.com', timeoutMs: 0 }, /timeoutMs/],
    ] as const;
    for (const [request, message] of refused) {
      await expect(q.pushHttp(request as never)).rejects.toThrow(ValidationError);
      await expect(q.pushHttp(request as never)).rejects.toThrow(message);
    }
    expect(await q.length()).toBe(0);
    expect(() => q.handler({ name: 'pgtq.http' }, async () => {})).toThrow(ConfigError);
  });

  it('from SQL: push_http stores a task a worker runs, and refuses the same bad input', async () => {
    const q = db.queue('sql-http');
    answers.set('/from-sql', (_, res) =>
      res.writeHead(201, { 'content-type': 'application/json' }).end('[1]'),
    );
    await services.start(q.worker({ http: true }));
    const [pushed] = await db.rows<{ id: string }>(
      `SELECT :schema.push_http('sql-http', $1, method => 'post', body => '{"userId": 42, "note": null}',
                                headers => '{"x-source": "sql"}')::text AS id`,
      [`${base}/from-sql`],
    );
    const row = await finished(pushed?.id as string);
    expect(row).toMatchObject({ state: 'succeeded', result: { status: 201, body: [1] } });
    const [call] = calls('/from-sql');
    expect(JSON.parse(call?.body ?? '')).toEqual({ userId: 42, note: null });
    expect(call?.headers['x-source']).toBe('sql');
    for (const [args, message] of [
      ["'file:///etc/passwd'", /expected an http: or https: URL/],
      ["'https://example.com', method => 'TRACE'", /unknown method/],
      ["'https://example.com', method => 'GET', body => '{}'", /a GET request has no body/],
      ["'https://example.com', headers => '{\"a\": 1}'", /headers must be an object/],
      ["'https://example.com', timeout_ms => 0", /timeout_ms must be/],
    ] as const) {
      await expect(db.rows(`SELECT :schema.push_http('sql-http', ${args})`)).rejects.toThrow(message);
    }
    expect(await q.length()).toBe(0);
  });

  it('push() from SQL keeps null fields inside the arguments', async () => {
    const [pushed] = await db.rows<{ id: string }>(
      `SELECT :schema.push('nulls', 'n', '[{"a": null, "b": [null]}]') AS id`,
    );
    const [task] = await db.rows<{ args: unknown }>('SELECT args FROM :schema.tasks WHERE id = $1', [
      pushed?.id,
    ]);
    expect(task?.args).toEqual([{ a: null, b: [null] }]);
  });
});

describe('pgtq worker --http', () => {
  it('with no handler module, sends a queue’s HTTP tasks, signed with $PGTQ_HTTP_SIGNING_SECRET, and stops on SIGTERM', async () => {
    const secret = 'a-signing-secret-from-the-env';
    answers.set('/cli', (_, res) => res.writeHead(200).end());
    const run = startNode(
      [cli, 'worker', '--http', '--queue', 'cli-http', '--allow-host', '127.0.0.1'],
      { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema, PGTQ_HTTP_SIGNING_SECRET: secret },
      { clean: true, timeoutMs: 60_000 },
    );
    const [pushed] = await db.rows<{ id: string }>(
      `SELECT :schema.push_http('cli-http', $1, body => '{"from": "sql"}')::text AS id`,
      [`${base}/cli`],
    );
    expect(await finished(pushed?.id as string)).toMatchObject({ state: 'succeeded' });
    const [call] = calls('/cli');
    expect(verifyHttpSignature(secret, call?.headers['pgtq-signature'] as string, call?.body ?? '')).toBe(
      true,
    );
    run.child.kill('SIGTERM');
    const result = await run.finished;
    expect(result.code, result.stderr).toBe(0);
  });

  it('--allow-host without --http, and --http without a module or --queue, are usage errors', async () => {
    const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };
    for (const args of [
      ['worker', '--allow-host', 'x.example'],
      ['worker', '--http'],
    ]) {
      const result = await startNode([cli, ...args], env, { clean: true, timeoutMs: 30_000 }).finished;
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/--allow-host needs --http|needs --queue/);
    }
  });
});

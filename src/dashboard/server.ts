import type { IncomingMessage, ServerResponse } from 'node:http';
import { PgTqError, TaskNotFoundError, ValidationError } from '../errors.js';
import type { Logger } from '../logger.js';
import { retryFailureGroup, setPaused, taskActions } from './actions.js';
import { asset } from './assets.js';
import { HttpError } from './http-error.js';
import { Metrics } from './metrics.js';
import { type DashboardSource, failures, overview, schedules, taskDetail, taskList, text } from './reads.js';
import { requestToken, sameOrigin, sameToken, secureHeaders, tokenCookie } from './security.js';

export interface RouterOptions {
  basePath: string;
  token: string | undefined;
  readOnly: boolean;
  logger: Logger;
  version: string;
}

type Body = Record<string, unknown>;
type Next = (error?: unknown) => void;

const MAX_BODY_BYTES = 64 * 1024;

/**
 * The dashboard's request handler: the page, its JSON API under api/, /metrics and
 * /healthz, all under `basePath`. A request outside it goes to `next` when there is
 * one (a mounted handler in Express or Connect), else gets a 404.
 */
export function createRouter(source: DashboardSource, options: RouterOptions) {
  const { basePath, token, readOnly, logger } = options;
  const metrics = new Metrics(source);

  async function get(path: string, params: URLSearchParams, res: ServerResponse): Promise<void> {
    const queue = text(params, 'queue');
    if (path === '/api/config') {
      return json(res, 200, { readOnly, schema: source.q.schema, version: options.version });
    }
    if (path === '/api/overview') return json(res, 200, await overview(source, queue));
    if (path === '/api/tasks') return json(res, 200, await taskList(source, params));
    const task = path.match(/^\/api\/tasks\/([^/]+)$/);
    if (task) return json(res, 200, await taskDetail(source, task[1] as string));
    if (path === '/api/failures') return json(res, 200, await failures(source, queue));
    if (path === '/api/schedules') return json(res, 200, await schedules(source));
    if (path === '/metrics') {
      const body = await metrics.render();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
      return;
    }
    const file = asset(path === '/' ? 'index.html' : path.slice(1));
    if (!file) throw new HttpError(404, 'not found');
    res.writeHead(200, { 'content-type': file.type, 'cache-control': 'no-cache' }).end(await file.body);
  }

  async function post(path: string, body: Body, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const task = path.match(/^\/api\/tasks\/([^/]+)\/([a-z]+)$/);
    const queue = path.match(/^\/api\/queues\/([^/]+)\/(pause|resume)$/);
    const action =
      task?.[2] ?? (queue ? queue[2] : path === '/api/failures/retry' ? 'retry-group' : undefined);
    const run = task
      ? Object.hasOwn(taskActions, action as string) && taskActions[action as string]
      : undefined;
    let result: Promise<unknown> | undefined;
    if (task && run) result = run(source, task[1] as string, body);
    else if (queue) result = setPaused(source, decodePart(queue[1] as string), queue[2] === 'pause', body);
    else if (action === 'retry-group') result = retryFailureGroup(source, body);
    if (!result) throw new HttpError(404, 'not found');
    const done = (await result) as { message: string };
    logger.info('dashboard action', {
      action,
      path,
      ...(Object.keys(body).length > 0 ? { body } : {}),
      from: req.socket.remoteAddress,
      result: done.message,
    });
    json(res, 200, { ok: true, ...done });
  }

  async function handle(req: IncomingMessage, res: ServerResponse, next?: Next): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) {
      if (next) return next();
      return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
    secureHeaders(res);
    const path = url.pathname.slice(basePath.length);
    if (path === '') {
      // the page's relative addresses need the trailing slash
      return void res.writeHead(308, { location: `${basePath}/${url.search}` }).end();
    }
    if (path === '/healthz') return healthz(source, res);
    if (token !== undefined) {
      const given = url.searchParams.get('token');
      if (given !== null && req.method === 'GET' && sameToken(given, token)) {
        url.searchParams.delete('token');
        res.writeHead(303, {
          location: url.pathname + url.search,
          'set-cookie': tokenCookie(token, `${basePath}/`),
        });
        return void res.end();
      }
      const carried = requestToken(req);
      if (carried === undefined || !sameToken(carried, token)) {
        const why = new HttpError(
          401,
          'this dashboard needs its token: open it with ?token=… or send "Authorization: Bearer …"',
        );
        // a person opening the page reads a sentence; the page's script and scripts read JSON
        if (path !== '/') throw why;
        return void res
          .writeHead(401, { 'content-type': 'text/plain; charset=utf-8' })
          .end(`${why.message}\n`);
      }
    }
    if (req.method === 'GET' || req.method === 'HEAD') return get(path, url.searchParams, res);
    if (req.method !== 'POST') throw new HttpError(405, 'only GET and POST');
    if (readOnly) throw new HttpError(403, 'this dashboard is read-only');
    if (!sameOrigin(req)) throw new HttpError(403, 'refused: the request comes from another site');
    return post(path, await readJson(req), req, res);
  }

  return (req: IncomingMessage, res: ServerResponse, next?: Next): void => {
    handle(req, res, next).catch((error: unknown) => fail(res, error, logger));
  };
}

async function healthz({ q, queries }: DashboardSource, res: ServerResponse): Promise<void> {
  try {
    await queries.ping(q.pool);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
  } catch (error) {
    res
      .writeHead(503, { 'content-type': 'text/plain' })
      .end(`database unavailable: ${(error as Error).message}\n`);
  }
}

/** A path segment, decoded; a malformed one is the client's mistake. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, `bad path segment "${part}"`);
  }
}

async function readJson(req: IncomingMessage): Promise<Body> {
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
    throw new HttpError(415, 'actions take a JSON body (content-type: application/json)');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'body too large');
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks).toString('utf8');
  let body: unknown;
  try {
    body = raw === '' ? {} : JSON.parse(raw);
  } catch {
    throw new HttpError(400, 'body: not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'body: expected a JSON object');
  }
  return body as Body;
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' })
    .end(JSON.stringify(value));
}

/** The page shows `error`; a failure of pgtq's own is logged, a bad request is not. */
function fail(res: ServerResponse, error: unknown, logger: Logger): void {
  let status = 500;
  let message = 'internal error; see the dashboard’s log';
  if (error instanceof HttpError) ({ status, message } = error);
  else if (error instanceof TaskNotFoundError) [status, message] = [404, error.message];
  else if (error instanceof ValidationError) [status, message] = [400, error.message];
  else if (isConnectionError(error))
    [status, message] = [503, `database unavailable: ${(error as Error).message}`];
  if (status >= 500)
    logger.error('dashboard request failed', { error: (error as Error)?.message ?? String(error) });
  if (res.headersSent) return void res.end();
  json(res, status, { error: message });
}

function isConnectionError(error: unknown): boolean {
  if (error instanceof PgTqError) return false;
  const code = (error as { code?: string })?.code ?? '';
  return (
    /^(ECONN|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|57P0|08)/.test(code) ||
    /Connection terminated/.test(String(error))
  );
}

import type { z } from 'zod/v4';
import { parse } from '../config.js';
import type { TaskContext } from '../handler/context.js';
import { type AnyHandler, createHandler, type HandlerHost } from '../handler/handler.js';
import { handlerOptions } from '../handler/options.js';
import { assertJson, storableText } from '../json.js';
import { Fail, RetryAfter } from '../worker/outcomes.js';
import {
  HTTP_TASK,
  type HttpResponse,
  type HttpWorkerOptions,
  httpArgs,
  type httpRequest,
  httpWorkerOptions,
} from './request.js';
import { SIGNATURE_HEADER, signBody } from './signature.js';

type Settings = z.output<typeof httpWorkerOptions>;
type Request = z.output<typeof httpRequest>;

/** Statuses worth trying again: the server may answer differently later. */
const retryable = (status: number) => status === 408 || status === 429 || status >= 500;
/** How much of a failed answer's body its error quotes. */
const EXCERPT_CHARS = 500;
/** The longest wait a Retry-After may ask for. */
const MAX_RETRY_AFTER_MS = 86_400_000;

/** The handler a worker with `http` runs HTTP tasks with (see README, HTTP tasks). */
export function httpTaskHandler(host: HandlerHost, given: HttpWorkerOptions | true): AnyHandler {
  const settings = parse(httpWorkerOptions, given === true ? {} : given, 'worker options: http');
  const options = parse(
    handlerOptions,
    { name: HTTP_TASK, args: httpArgs, ...(settings.backoff && { backoff: settings.backoff }) },
    'worker options: http',
  );
  return createHandler(host, { ...options, name: HTTP_TASK }, function (this: TaskContext, request: Request) {
    return send(this, request, settings);
  }) as unknown as AnyHandler;
}

/**
 * Sends the request: a 2xx is the result; 408, 429, 5xx, a network error or the
 * timeout are retried (no sooner than a Retry-After); anything else fails at once.
 */
async function send(context: TaskContext, request: Request, settings: Settings): Promise<HttpResponse> {
  const url = new URL(request.url);
  // Errors name the origin and path only: a query string may hold a token.
  const where = `${request.method} ${url.origin}${url.pathname}`;
  if (settings.allowHosts && !settings.allowHosts.some((host) => hostMatches(url.hostname, host))) {
    throw new Fail(`${where}: ${url.hostname} is not in this worker's http.allowHosts`);
  }
  const body = request.body === undefined ? undefined : JSON.stringify(request.body);
  const headers = new Headers(request.headers);
  for (const [name, value] of Object.entries(settings.headers ?? {})) headers.set(name, value);
  if (body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
  if (context.task) {
    headers.set('pgtq-task-id', context.task.id);
    headers.set('pgtq-attempt', String(context.task.attempt));
  }
  if (settings.signingSecret) headers.set(SIGNATURE_HEADER, signBody(settings.signingSecret, body ?? ''));
  const timeout = AbortSignal.timeout(request.timeoutMs);
  try {
    // Redirects are not followed: one could lead to a host the allow-list refuses.
    const response = await fetch(url, {
      method: request.method,
      headers,
      body,
      redirect: 'manual',
      signal: AbortSignal.any([context.signal, timeout]),
    });
    const { text, truncated } = await readText(response, settings.maxBodyBytes);
    if (response.ok) {
      const kept = settings.keepHeaders.flatMap((name) => {
        const value = response.headers.get(name);
        return value === null ? [] : [[name.toLowerCase(), value] as const];
      });
      const json = !truncated && /\bjson\b/i.test(response.headers.get('content-type') ?? '');
      return {
        status: response.status,
        headers: Object.fromEntries(kept),
        body: bodyValue(text, json),
        truncated,
      };
    }
    const excerpt = text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
    const answer = `${where} answered ${response.status} ${response.statusText}${excerpt ? `: ${excerpt}` : ''}`;
    if (retryable(response.status)) {
      throw new RetryAfter(answer, retryAfterMs(response.headers.get('retry-after')));
    }
    throw new Fail(answer);
  } catch (error) {
    if (timeout.aborted && !context.signal.aborted) {
      throw new Error(`${where}: no answer within ${request.timeoutMs} ms`, { cause: error });
    }
    throw error;
  }
}

/** `host` is a name, or `*.name` for its subdomains. */
function hostMatches(hostname: string, host: string): boolean {
  const name = hostname.toLowerCase();
  const pattern = host.toLowerCase();
  return pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) : name === pattern;
}

/** The body as text, at most `maxBytes` of it (the rest is not read). */
async function readText(response: Response, maxBytes: number): Promise<{ text: string; truncated: boolean }> {
  if (!response.body) return { text: '', truncated: false };
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > maxBytes) {
      truncated = true;
      await reader.cancel();
      break;
    }
  }
  const bytes = Buffer.concat(chunks).subarray(0, maxBytes);
  return { text: storableText(bytes.toString('utf8')), truncated };
}

/** Parsed if it is JSON that can be stored, else the text. */
function bodyValue(text: string, json: boolean): unknown {
  if (!json || text === '') return text;
  try {
    const value: unknown = JSON.parse(text);
    assertJson(value, 'body');
    return value;
  } catch {
    return text;
  }
}

/** A Retry-After in seconds or as an HTTP date, in ms from now; 0 if absent or unreadable. */
function retryAfterMs(header: string | null): number {
  if (!header) return 0;
  const ms = /^\d+$/.test(header.trim()) ? Number(header) * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : 0;
}

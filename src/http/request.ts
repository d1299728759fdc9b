import { z } from 'zod/v4';
import { backoffOptions } from '../handler/options.js';

/** The task name of HTTP tasks: `q.pushHttp` stores it, a worker with `http` runs it. */
export const HTTP_TASK = 'pgtq.http';

const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name');
// No CR, LF or NUL: a value that could end its header line is refused, not sent.
const headerValue = z.string().regex(/^[^\r\n\0]*$/, 'a header value cannot hold CR, LF or NUL');

/** What an HTTP task asks a worker to send. Stored as the task's argument, so no secrets here. */
export const httpRequest = z
  .object({
    /** An http: or https: URL. */
    url: z
      .string()
      .max(8_000)
      .refine((url) => URL.canParse(url) && /^https?:$/.test(new URL(url).protocol), {
        message: 'expected an http: or https: URL',
      }),
    /** @default 'POST' */
    method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
    /** Sent as they are; keep credentials on the worker (its `http.headers` option) instead. */
    headers: z.record(headerName, headerValue).optional(),
    /** Any JSON value, sent as `application/json` (not with GET or HEAD). */
    body: z.json().optional(),
    /** The request is aborted after this many ms, and tried again later. @default 30_000 */
    timeoutMs: z.number().int().min(1).max(3_600_000).default(30_000),
  })
  .strict()
  .refine((request) => request.body === undefined || !['GET', 'HEAD'].includes(request.method), {
    message: 'a GET or HEAD request has no body',
    path: ['body'],
  });
export type HttpRequest = z.input<typeof httpRequest>;

/** An HTTP task's argument list: one request. */
export const httpArgs = z.tuple([httpRequest]);

/** A 2xx answer, stored as the task's result. */
export interface HttpResponse {
  status: number;
  /** The headers named in the worker's `http.keepHeaders`, lower-cased. */
  headers: Record<string, string>;
  /** The body: parsed if JSON and whole, else text (cut at `http.maxBodyBytes`). */
  body: unknown;
  /** Whether the body was cut at `http.maxBodyBytes`. */
  truncated: boolean;
}

/** How a worker runs HTTP tasks: `q.worker({ http: { … } })`, or `http: true` for the defaults. */
export const httpWorkerOptions = z
  .object({
    /**
     * Hosts the worker may call: a name (`api.example.com`) or any subdomain of one
     * (`*.example.com`). A URL stored from SQL is input from elsewhere: list hosts
     * wherever that matters. @default any host
     */
    allowHosts: z.array(z.string().min(1).max(253)).min(1).optional(),
    /** Signs each request: `pgtq-signature: t=<unix ms>,v1=<hex HMAC-SHA256 of "t.body">`. */
    signingSecret: z.string().min(16, 'use a secret of at least 16 characters').optional(),
    /** Headers sent with every request (tokens, say), kept out of the tasks table. */
    headers: z.record(headerName, headerValue).optional(),
    /** Response headers kept in the result. @default ['content-type', 'location', 'etag'] */
    keepHeaders: z.array(headerName).default(['content-type', 'location', 'etag']),
    /** Bytes of a response body kept in the result or an error. @default 65_536 */
    maxBodyBytes: z.number().int().min(0).max(10_000_000).default(65_536),
    /** Back-off between attempts (a Retry-After asking longer wins). */
    backoff: backoffOptions.optional(),
  })
  .strict();
export type HttpWorkerOptions = z.input<typeof httpWorkerOptions>;

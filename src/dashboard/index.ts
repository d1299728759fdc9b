import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod/v4';
import { type Connection, parse } from '../config.js';
import { Statements } from '../db/statements.js';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import { PgTq } from '../pgtq.js';
import { DashboardStatements } from './queries.js';
import { isLoopback } from './security.js';
import { createRouter } from './server.js';

export interface DashboardOptions {
  /** Where the dashboard is mounted, such as '/admin/queue'. @default '' (the root) */
  basePath?: string;
  /** Required by every request but /healthz: `?token=` in the page's address, then a cookie, or a bearer header. */
  token?: string;
  /** No actions: the page shows none and POSTs are refused. @default false */
  readOnly?: boolean;
  /** Where actions and server errors are reported. @default the queue's logger */
  logger?: Logger;
}

/** A request handler for node:http, Express or Connect; close() ends the pool it opened, if any. */
export type DashboardHandler = ((
  req: IncomingMessage,
  res: ServerResponse,
  next?: (error?: unknown) => void,
) => void) & {
  close(): Promise<void>;
};

const options = z
  .object({
    basePath: z
      .string()
      .regex(/^(\/[^/?#]+)*\/?$/, 'expected a path such as /admin/queue')
      .transform((path) => path.replace(/\/$/, ''))
      .default(''),
    token: z.string().min(1, 'an empty token would let anyone in').optional(),
    readOnly: z.boolean().default(false),
    logger: z.custom<Logger>((value) => typeof value === 'object' && value !== null).optional(),
  })
  .strict();

/**
 * The dashboard over one pgtq schema, every queue of it: `source` is a PgTq (its pool
 * and schema are used) or connection options for a pool of its own.
 */
export function dashboard(
  source: PgTq | Connection,
  dashboardOptions: DashboardOptions = {},
): DashboardHandler {
  const o = parse(options, dashboardOptions, 'dashboard options', ConfigError);
  const owned = source instanceof PgTq ? undefined : new PgTq('default', source);
  const q = owned ?? (source as PgTq);
  const unprepared = { preparedStatements: false };
  const statements = new Statements(q.schema, q.statements.limits, unprepared);
  const queries = new DashboardStatements(q.schema, unprepared);
  const route = createRouter(
    { q, statements, queries },
    {
      basePath: o.basePath,
      token: o.token,
      readOnly: o.readOnly,
      logger: o.logger ?? q.logger,
      version: version(),
    },
  );
  return Object.assign(route, { close: async () => owned?.close() });
}

export interface ServeOptions extends DashboardOptions {
  /** @default 4000; 0 picks a free port */
  port?: number;
  /** @default '127.0.0.1'; any other than a loopback address needs a token */
  host?: string;
}

export interface DashboardServer {
  /** Where it serves, such as http://127.0.0.1:4000/ */
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Serves the dashboard on its own HTTP server, as `pgtq dashboard` does. */
export async function serveDashboard(
  source: PgTq | Connection,
  serve: ServeOptions = {},
): Promise<DashboardServer> {
  const { port = 4000, host = '127.0.0.1', ...rest } = serve;
  if (!isLoopback(host) && !rest.token) {
    throw new ConfigError(
      `serving on ${host}, reachable from other machines, needs a token (--token or $PGTQ_DASHBOARD_TOKEN)`,
    );
  }
  const handler = dashboard(source, rest);
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject).listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}${rest.basePath?.replace(/\/$/, '') ?? ''}/`,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await handler.close();
    },
  };
}

/** pgtq's version, from the package.json two folders up (dist/dashboard/ in a package). */
function version(): string {
  try {
    return (
      JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    ).version;
  } catch {
    return 'unknown';
  }
}

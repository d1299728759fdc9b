import { ConfigError } from '../../index.js';
import {
  type Command,
  lineLogger,
  openQueue,
  parseCommand,
  portNumber,
  serveUntilSignal,
  UsageError,
} from '../common.js';

export const dashboardCommand: Command = {
  summary: 'serve a web dashboard: live state, history, failures, schedules, actions, /metrics',
  usage: `pgtq dashboard [--port <n>] [--host <address>] [--token <secret>] [--read-only] [--base-path <path>]

Serves every queue of the schema and prints the address it serves on, on one line.
  --port <n>          default 4000 (0: any free port)
  --host <address>    default 127.0.0.1; any address reachable from other machines
                      (0.0.0.0, a LAN address) needs a token
  --token <secret>    default $PGTQ_DASHBOARD_TOKEN; asked of every request but
                      /healthz: open the page once with ?token=<secret>, or send
                      "Authorization: Bearer <secret>" (Prometheus, scripts)
  --read-only         no actions: no buttons on the page, POSTs refused
  --base-path <path>  serve under a path, such as /pgtq (behind a proxy)
Also serves /metrics (Prometheus text format) and /healthz.`,
  async run({ argv, out, err }) {
    const { values } = parseCommand(argv, {
      port: { type: 'string' },
      host: { type: 'string' },
      token: { type: 'string' },
      'read-only': { type: 'boolean' },
      'base-path': { type: 'string' },
    });
    const port = portNumber('port', values.port, 4000);
    const token = values.token ?? process.env.PGTQ_DASHBOARD_TOKEN;
    const log = lineLogger(err, { verbose: values.verbose, json: values.json });
    // Loaded here, not at the top: the other commands never load the dashboard.
    const { serveDashboard } = await import('../../dashboard/index.js');
    const q = openQueue(values, log);
    let served: Awaited<ReturnType<typeof serveDashboard>> | undefined;
    try {
      served = await serveDashboard(q, {
        port,
        host: values.host ?? '127.0.0.1',
        readOnly: values['read-only'] ?? false,
        logger: log,
        ...(token ? { token } : {}),
        ...(values['base-path'] ? { basePath: values['base-path'] } : {}),
      });
    } catch (error) {
      await q.close();
      // refused options (a public address without a token, a bad path) are bad usage: exit 2
      throw error instanceof ConfigError ? new UsageError(error.message) : error;
    }
    const running = served;
    out.write(`${running.url}\n`);
    await serveUntilSignal([{ start: async () => {}, stop: () => running.close().then(() => q.close()) }], {
      log,
      graceMs: 0,
    });
    return 0;
  },
};

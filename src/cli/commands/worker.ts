import { type HttpWorkerOptions, type Logger, PgTq, type Scheduler, type Worker } from '../../index.js';
import {
  applyConnectionFlags,
  type Command,
  closeQueues,
  lineLogger,
  parseCommand,
  positiveInt,
  serveUntilSignal,
  UsageError,
} from '../common.js';
import { loadHandlers } from '../load-handlers.js';

export const workerCommand: Command = {
  summary: 'run the tasks of the queues that handler modules register',
  usage: `pgtq worker <module-or-folder>... [--queue <name>] [--concurrency <n>] [--with-scheduler] [--http]
       pgtq worker --http --queue <name>      (HTTP tasks only: no handler module)

Imports the modules (a folder: every handlers.js / tasks.js in it) and runs a worker
for each PgTq queue they export. A queue created without a connection follows
--database-url, --schema, --listen and --prepared-statements (they set
$DATABASE_URL, $PGTQ_SCHEMA, $PGTQ_LISTEN and $PGTQ_PREPARED_STATEMENTS before the
modules load). Logs one line per task state change. On SIGTERM or SIGINT it stops
claiming, lets running tasks finish, and exits 0; a second signal exits at once.
  --concurrency <n>    tasks at once per queue (default 10)
  --lease-ms <ms>      lease of a claim (default 20000)
  --grace-ms <ms>      how long running tasks may finish on shutdown (default 10000)
  --with-scheduler     also run a scheduler in this process (simple deployments)
  --http               also send the queues' HTTP tasks (signed with $PGTQ_HTTP_SIGNING_SECRET if set)
  --allow-host <host>  with --http, a host it may call (repeat it; *.example.com for subdomains)`,
  async run({ argv, err }) {
    const { values, positionals } = parseCommand(
      argv,
      {
        concurrency: { type: 'string', short: 'c' },
        'lease-ms': { type: 'string' },
        'grace-ms': { type: 'string' },
        'with-scheduler': { type: 'boolean' },
        http: { type: 'boolean' },
        'allow-host': { type: 'string', multiple: true },
      },
      { positionals: true },
    );
    const concurrency = positiveInt('concurrency', values.concurrency, 10);
    const leaseMs = positiveInt('lease-ms', values['lease-ms'], 20_000);
    const shutdownGraceMs = positiveInt('grace-ms', values['grace-ms'], 10_000);
    const log = lineLogger(err, { verbose: values.verbose, json: values.json });
    // Before the modules load, so that a `new PgTq(name)` in them connects where the command line says.
    applyConnectionFlags(values);
    const http = httpOptions(values.http, values['allow-host']);
    let queues = await loadQueues(positionals, values.queue, http !== undefined);
    if (values.queue) queues = queues.filter((q) => q.name === values.queue);
    if (queues.length === 0) throw new UsageError(`no queue named "${values.queue}" in the handler modules`);
    for (const q of queues) q.adoptLogger(log);

    const services: (Worker | Scheduler)[] = [];
    const first = queues[0] as PgTq;
    if (values['with-scheduler']) {
      // Started first, so the workers find it alive.
      const scheduler = first.scheduler();
      scheduler.on('scheduler:error', (error) => log.error('scheduler error', { error: error.message }));
      services.push(scheduler);
    }
    for (const q of queues) {
      const worker = q.worker({ concurrency, leaseMs, shutdownGraceMs, ...(http && { http }) });
      logEvents(worker, q, log);
      services.push(worker);
    }
    try {
      await serveUntilSignal(services, {
        log,
        graceMs: shutdownGraceMs,
        onStarted: () =>
          log.info('worker started', {
            queues: queues.map((q) => q.name).join(','),
            handlers: queues.flatMap((q) => [...q.handlers.keys()]).join(','),
            concurrency,
            pid: process.pid,
          }),
      });
    } finally {
      await closeQueues(queues);
    }
    log.info('worker stopped');
    return 0;
  },
};

function logEvents(worker: Worker, q: PgTq, log: Logger) {
  const at = (task: { id: string; name: string; attempt: number }) => ({
    queue: q.name,
    task: task.name,
    id: task.id,
    attempt: task.attempt,
  });
  worker.on('task:start', (task) => log.info('running', at(task)));
  worker.on('task:success', (task) => log.info('succeeded', at(task)));
  worker.on('task:retry', (task, error, delayMs) =>
    log.warn('retry scheduled', { ...at(task), delayMs, error: firstLine(error) }),
  );
  worker.on('task:failure', (task, error) => log.error('failed', { ...at(task), error: firstLine(error) }));
  worker.on('task:cancel', (task, reason) =>
    log.warn('cancelled', { ...at(task), reason: firstLine(reason) }),
  );
  worker.on('task:lease-lost', (task) => log.warn('lease lost; outcome discarded', at(task)));
  // 'scheduler:missing' is logged by the worker itself, through the queue's logger.
  worker.on('worker:error', (error) => log.error('worker error', { error: error.message }));
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}

/** The worker's `http` option from --http and --allow-host, or undefined without --http. */
function httpOptions(
  enabled: boolean | undefined,
  hosts: string[] | undefined,
): HttpWorkerOptions | undefined {
  if (!enabled) {
    if (hosts) throw new UsageError('--allow-host needs --http');
    return undefined;
  }
  const signingSecret = process.env.PGTQ_HTTP_SIGNING_SECRET || undefined;
  return { ...(hosts && { allowHosts: hosts }), ...(signingSecret && { signingSecret }) };
}

/** The queues of the handler modules; with --http and no module, the one named by --queue. */
async function loadQueues(paths: string[], queue: string | undefined, http: boolean): Promise<PgTq[]> {
  if (paths.length > 0 || !http) return loadHandlers(paths);
  if (!queue) throw new UsageError('an HTTP-only worker (--http without a module) needs --queue');
  return [new PgTq(queue)];
}

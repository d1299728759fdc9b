/**
 * `npm run chaos`: proves "nothing lost, nothing done twice" while things break.
 *
 * On a throwaway PostgreSQL it runs 4 worker processes and 2 schedulers (the
 * built `pgtq` command) while producers push tasks in their own transactions,
 * and meanwhile SIGKILLs workers, terminates every connection, SIGSTOPs a worker
 * past its lease and crash-restarts PostgreSQL. Then it stops the faults, lets the
 * queue drain, stops the processes with SIGTERM and checks from the database that
 * every committed push has exactly one effect and nothing else happened.
 * Exit code 0 only when every invariant holds.
 *
 *   npm run chaos                  about 2.5 minutes of faults
 *   npm run chaos -- --short       about 35 s (CI)
 *   npm run chaos -- --seconds 60
 *   npm run chaos -- --keep-logs   keep the process logs even when the run passes
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Admin, urlFor } from './admin.mjs';
import { Cluster } from './cluster.mjs';
import { drainQueue, prepareDatabase, watchOverdue } from './database.mjs';
import { Faults } from './faults.mjs';
import { produce, Tally } from './producers.mjs';
import { printReport } from './report.mjs';
import { Supervised } from './supervisor.mjs';
import { judge } from './verdict.mjs';

const WORKERS = 4;
const SCHEDULERS = 2;
const CONCURRENCY = 5;
const LEASE_MS = 2500;
const GRACE_MS = 5000;
/**
 * How long a worker may take to exit after SIGTERM: the grace period for running
 * tasks, one more second for aborted ones, and time to store outcomes and close.
 */
const STOP_TIMEOUT_MS = GRACE_MS + 5000;
/** `pgtq scheduler`'s rescue interval (the default of SchedulerOptions.rescueIntervalMs). */
const RESCUE_INTERVAL_MS = 2000;
const DRAIN_TIMEOUT_MS = 120_000;
/** Each producer's mean pause between transactions. */
const PRODUCER_PAUSE_MS = 40;

const { values } = parseArgs({
  options: {
    short: { type: 'boolean' },
    seconds: { type: 'string' },
    'keep-logs': { type: 'boolean' },
  },
});
const faultSeconds = values.seconds ? Number(values.seconds) : values.short ? 35 : 150;
if (!Number.isFinite(faultSeconds) || faultSeconds < 10) {
  console.error(`--seconds must be a number of at least 10, got "${values.seconds}"`);
  process.exit(2);
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/cli/main.js');
const handlersModule = fileURLToPath(new URL('./handlers.mjs', import.meta.url));
const logDir = mkdtempSync(join(tmpdir(), 'pgtq-chaos-logs-'));
const log = (message) => console.log(`[chaos ${new Date().toISOString().slice(11, 23)}] ${message}`);

/** @type {Cluster | undefined} */
let cluster;
/** @type {Supervised[]} */
const processes = [];
let stopping = false;

// Whatever happens (failure, Ctrl-C, a bug in the suite), no server or process is left behind.
function abandon() {
  stopping = true;
  for (const p of processes) p.abandon();
  try {
    cluster?.saveLog(logDir);
  } catch {}
  cluster?.remove();
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    log(`${signal}: stopping, removing the cluster; logs in ${logDir}`);
    abandon();
    process.exit(130);
  });
}
process.on('exit', abandon);

async function main() {
  const startedAt = Date.now();
  cluster = new Cluster();
  await cluster.start();
  log(`PostgreSQL on port ${cluster.port}, data in ${cluster.dir} (fsync off, synchronous_commit on)`);
  const url = cluster.url;
  const env = { DATABASE_URL: url, PGTQ_SCHEMA: 'pgtq' };
  process.env.DATABASE_URL = url;

  await prepareDatabase(cli, env);
  const admin = new Admin(url);
  const { effect, QUEUE, TASK } = await import('./handlers.mjs');

  /** @type {import('./supervisor.mjs').UnexpectedExit[]} */
  const unexpectedExits = [];
  const supervise = (name, args) => {
    const p = new Supervised({
      name,
      args,
      env: { ...env, DATABASE_URL: urlFor(url, name) },
      logDir,
      canRestart: () => !stopping,
      onUnexpectedExit: (exit) => {
        unexpectedExits.push(exit);
        log(
          `UNEXPECTED EXIT of ${name} (pid ${exit.pid}, ${exit.signal ?? `code ${exit.code}`}): ${exit.cause}`,
        );
      },
    });
    processes.push(p);
    p.start();
    return p;
  };
  const workerArgs = [
    cli,
    'worker',
    handlersModule,
    ...['--concurrency', String(CONCURRENCY), '--lease-ms', String(LEASE_MS), '--grace-ms', String(GRACE_MS)],
  ];
  Array.from({ length: SCHEDULERS }, (_, i) => supervise(`scheduler-${i + 1}`, [cli, 'scheduler']));
  const workers = Array.from({ length: WORKERS }, (_, i) => supervise(`worker-${i + 1}`, workerArgs));
  await waitFor(() => processes.every((p) => p.ready), 30_000);
  log(
    `${WORKERS} workers (concurrency ${CONCURRENCY}, lease ${LEASE_MS} ms) and ${SCHEDULERS} schedulers started`,
  );

  const tally = new Tally();
  const stopProducing = new AbortController();
  const producers = [
    ['api-1', 'api'],
    ['api-2', 'api'],
    ['sql-1', 'sql'],
  ].map(([id, via]) =>
    produce({
      id,
      via: /** @type {'api' | 'sql'} */ (via),
      url,
      effect,
      queue: QUEUE,
      task: TASK,
      tally,
      stop: stopProducing.signal,
      pauseMs: PRODUCER_PAUSE_MS,
    }),
  );
  const monitor = watchOverdue(admin);

  const faults = new Faults({
    admin,
    cluster,
    workers,
    seconds: faultSeconds,
    leaseMs: LEASE_MS,
    rescueIntervalMs: RESCUE_INTERVAL_MS,
    stopTimeoutMs: STOP_TIMEOUT_MS,
  });
  const faultsFrom = Date.now();
  log(
    `faults for ${faultSeconds} s: SIGKILLs, termination storms, SIGSTOP past the lease, a PostgreSQL crash`,
  );
  faults.start();
  await progress(faultSeconds * 1000, () =>
    log(
      `pushed ${tally.attempted}, kills ${faults.kills.length}, storms ${faults.storms.length}, ` +
        `sigstops ${faults.sigstops.length}, restarts ${faults.restarts.length}, unexpected exits ${unexpectedExits.length}`,
    ),
  );
  await faults.stop();
  stopProducing.abort();
  await Promise.all(producers);
  const faultMs = Date.now() - faultsFrom;
  log(`faults stopped after ${(faultMs / 1000).toFixed(1)} s; ${tally.attempted} pushes; draining`);

  const drain = await drainQueue(admin, DRAIN_TIMEOUT_MS);
  log(drain.ok ? `drained in ${(drain.ms / 1000).toFixed(1)} s` : `NOT DRAINED: ${drain.left}`);
  stopping = true;
  const terminations = await Promise.all(
    processes.map(async (p) => ({ name: p.name, ...(await p.terminate(STOP_TIMEOUT_MS)) })),
  );
  await monitor.stop();
  for (const t of terminations) {
    if (t.code !== 0 || t.hung)
      log(`${t.name} on SIGTERM: ${t.hung ? 'HUNG' : `exit ${t.code ?? t.signal}`}`);
  }

  const verdict = await judge({
    admin,
    tally,
    faults,
    workers,
    unexpectedExits,
    terminations,
    drain,
    faultMs,
    totalMs: Date.now() - startedAt,
    longestOverdueMs: monitor.longestMs(),
  });
  await admin.close();
  printReport(verdict, { unexpectedExits, terminations, logDir });
  return verdict.ok;
}

/** Resolves once `predicate()` holds, or throws after `timeoutMs`. */
async function waitFor(predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Waits `ms`, reporting every 10 s. */
async function progress(ms, report) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, end - Date.now())));
    report();
  }
}

let ok = false;
try {
  ok = await main();
} catch (error) {
  console.error(`chaos: the run broke: ${error instanceof Error ? error.stack : String(error)}`);
} finally {
  abandon();
}
if (ok && !values['keep-logs']) rmSync(logDir, { recursive: true, force: true });
else console.log(`logs: ${logDir}`);
process.exitCode = ok ? 0 : 1;

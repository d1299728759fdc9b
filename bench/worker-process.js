/**
 * One worker process of the `processes` measure (bench/processes.js forks it): a pgtq worker on the
 * bench schema, and with `scheduler` set also the scheduler, as `pgtq worker --with-scheduler` runs
 * them. Driven over the IPC channel:
 *
 *   parent → child   { type: 'start' }    start the worker          → { type: 'started' }
 *                    { type: 'record' }   report handler starts     → { type: 'recording' }
 *                    { type: 'stop' }     stop, close, exit (also on SIGTERM or a lost parent)
 *   child → parent   { type: 'ready' }    connected, handler registered, scheduler running
 *                    { type: 'hit', i, at }   task i's handler started at `at`
 *                    { type: 'error', message }
 *
 * `at` is `now()` from bench/harness.js: epoch ms with sub-ms precision from performance.timeOrigin,
 * the same clock the parent reads when it pushes, so the two can be subtracted.
 */
import { PgTq } from '../dist/index.js';
import { now } from './harness.js';

/**
 * @typedef {{ url: string, schema: string, queue: string, task: string, max: number,
 *   concurrency: number, scheduler: boolean }} WorkerProcessOptions
 */

/**
 * A stop that takes longer (a worker waiting on a connection that never answers) ends the process
 * anyway, so that no bench run leaves a worker process behind.
 */
const STOP_DEADLINE_MS = 10_000;

/** @type {WorkerProcessOptions} */
const options = JSON.parse(process.argv[2] ?? '{}');

/** @param {Record<string, unknown>} message */
function send(message) {
  if (process.connected) process.send?.(message);
}

const q = new PgTq(options.queue, {
  connectionString: options.url,
  schema: options.schema,
  max: options.max,
});
// Off while the throughput run goes: one IPC message per task would cost this process more than the task.
let recording = false;
q.handler({ name: options.task }, async function noop(/** @type {number} */ i) {
  if (recording) send({ type: 'hit', i, at: now() });
});
const worker = q.worker({ concurrency: options.concurrency });
worker.on('worker:error', (/** @type {Error} */ error) =>
  process.stderr.write(`worker process ${process.pid}: ${error.message}\n`),
);
const scheduler = options.scheduler ? q.scheduler() : undefined;

/** @type {Promise<void> | undefined} */
let stopping;

/** Stops the worker (it finishes what it runs), then the scheduler, closes the pool and lets the process end. */
function stop() {
  stopping ??= (async () => {
    setTimeout(() => process.exit(1), STOP_DEADLINE_MS).unref();
    try {
      await worker.stop();
      await scheduler?.stop();
      await q.close();
    } catch (error) {
      process.stderr.write(`worker process ${process.pid}: stop: ${describe(error)}\n`);
      process.exitCode = 1;
    }
    if (process.connected) process.disconnect();
  })();
  return stopping;
}

/** @param {unknown} error */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

process.on('message', (/** @type {{ type: string }} */ message) => {
  if (message.type === 'start') {
    worker.start().then(
      () => send({ type: 'started' }),
      (error) => send({ type: 'error', message: `start: ${describe(error)}` }),
    );
  } else if (message.type === 'record') {
    recording = true;
    send({ type: 'recording' });
  } else if (message.type === 'stop') {
    void stop();
  }
});
process.on('SIGTERM', () => void stop());
// The parent is gone (it crashed or was killed): nothing will ever send 'stop'.
process.on('disconnect', () => void stop());

try {
  // The scheduler first, as the command line starts it, so no worker finds it missing.
  await scheduler?.start();
  // A first query, so the pool has a connection before the parent's clock starts.
  await q.length();
  send({ type: 'ready' });
  // The parent went away while this process was loading, before the 'disconnect' listener existed.
  if (!process.connected) await stop();
} catch (error) {
  send({ type: 'error', message: `setup: ${describe(error)}` });
  await stop();
}

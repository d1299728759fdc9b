/**
 * The `processes` measure: pgtq's worker in 1, 2, 4 and 8 separate Node.js processes against one
 * PostgreSQL, as a deployment scales out. For each count: the throughput on pre-pushed no-op tasks,
 * the pickup latency (push → handler start) with every process idle and racing for each task, and
 * the CPU the PostgreSQL server and the worker processes used during the throughput run, so that
 * the reader sees which of them runs out of cores first.
 *
 * The worker processes are bench/worker-process.js, forked; one of them also runs the scheduler
 * (which turns the ready ring the claims search), as `pgtq worker --with-scheduler` would. Tasks are
 * pushed from this process.
 */
import { execFileSync, fork } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { drain, measureLatency, now, StartRecorder, timeProcess } from './harness.js';

/**
 * @typedef {{ counts: number[], concurrency: number }} ProcessesScale
 * @typedef {{ ms: number, done: number, capped: boolean }} ProcessRun
 * @typedef {{ processes: number, run: ProcessRun, latency: { samples: number[], capped: boolean },
 *   serverCores: number, workerCores: number }} CountResult
 * @typedef {import('node:child_process').ChildProcess} ChildProcess
 */

const WORKER_SCRIPT = fileURLToPath(new URL('./worker-process.js', import.meta.url));
/** Forked processes load Node.js, pg and pgtq; on a busy 2-core machine eight of them take seconds. */
const READY_TIMEOUT_MS = 60_000;
/** A start or a record request is one round trip over IPC (and a worker start, a few queries). */
const REPLY_TIMEOUT_MS = 30_000;
/** A stopping worker finishes its running tasks (no-ops here) and returns what it prefetched. */
const STOP_TIMEOUT_MS = 15_000;

/**
 * Runs every count in turn, each on a fresh schema (the subject's own setup), so that no count
 * inherits the finished tasks or the dead rows of the one before it.
 * @param {any} subject the pgtq subject: setup(), teardown(), prepush(), pushOne(), unfinished(),
 *   workerProcessOptions()
 * @param {{ settle: () => Promise<void> }} ctx
 * @param {{ processes: ProcessesScale, process: number, bulkBatch: number, processCapMs: number,
 *   latencySamples: number, latencyPauseMs: number, latencyCapMs: number }} scale
 * @returns {Promise<CountResult[]>}
 */
export async function measureProcesses(subject, ctx, scale) {
  const results = [];
  for (const [k, count] of scale.processes.counts.entries()) {
    if (k > 0) {
      await subject.teardown();
      await subject.setup();
    }
    results.push(await measureCount(subject, ctx, count, scale));
  }
  return results;
}

/**
 * @param {any} subject
 * @param {{ settle: () => Promise<void> }} ctx
 * @param {number} count worker processes
 * @param {Parameters<typeof measureProcesses>[2]} s
 * @returns {Promise<CountResult>}
 */
async function measureCount(subject, ctx, count, s) {
  const recorder = new StartRecorder();
  const group = new WorkerGroup(recorder);
  try {
    await group.spawn(count, subject.workerProcessOptions(s.processes.concurrency));
    await subject.prepush(s.process, s.bulkBatch);
    await ctx.settle();

    const before = await cpuSnapshot(group.pids);
    const run = await group.watch(
      timeProcess({
        ...subject.unfinished(),
        n: s.process,
        capMs: s.processCapMs,
        start: () => group.startWorkers(),
      }),
    );
    const after = await cpuSnapshot(group.pids);
    // After a time cap, what is left would be picked up during the latency samples.
    await drain(subject.unfinished());

    await group.record();
    await ctx.settle();
    const latency = await group.watch(
      measureLatency({
        recorder,
        push: (i) => subject.pushOne(i),
        samples: s.latencySamples,
        pauseMs: s.latencyPauseMs,
        capMs: s.latencyCapMs,
        sampleTimeoutMs: 60_000,
      }),
    );
    await drain(subject.unfinished());
    const wallS = (after.at - before.at) / 1000;
    return {
      processes: count,
      run,
      latency,
      serverCores: (after.server - before.server) / wallS,
      workerCores: (after.workers - before.workers) / wallS,
    };
  } finally {
    await group.stop();
  }
}

/**
 * The forked worker processes of one count. Any of them exiting before `stop()`, or reporting an
 * error, fails the phase in progress (see `watch`) instead of leaving it to wait for a time cap.
 */
class WorkerGroup {
  /** @type {ChildProcess[]} */
  children = [];
  #stopping = false;
  /** @type {(error: Error) => void} */
  #fail = () => {};
  /** Rejects with the first failure of any worker process; never resolves. */
  failed = new Promise((_resolve, reject) => {
    this.#fail = reject;
  });

  /** @param {StartRecorder} recorder where the handler starts reported by the processes go */
  constructor(recorder) {
    this.recorder = recorder;
    // Nobody may be awaiting it when a process fails between phases; `watch` and `stop` report it.
    this.failed.catch(() => {});
  }

  get pids() {
    return this.children.map((child) => /** @type {number} */ (child.pid));
  }

  /**
   * Forks `count` worker processes, the first one with the scheduler, and waits until each is ready.
   * @param {number} count
   * @param {Omit<import('./worker-process.js').WorkerProcessOptions, 'scheduler'>} options
   */
  async spawn(count, options) {
    const ready = [];
    for (let k = 0; k < count; k++) {
      const child = fork(WORKER_SCRIPT, [JSON.stringify({ ...options, scheduler: k === 0 })], {
        // Whatever a worker process prints goes to stderr, with the bench's own log, not into the table.
        stdio: ['ignore', 2, 2, 'ipc'],
      });
      this.children.push(child);
      this.#watchChild(child);
      ready.push(nextMessage(child, 'ready'));
    }
    await this.watch(withTimeout(Promise.all(ready), READY_TIMEOUT_MS, 'worker processes ready'));
  }

  /** Starts every process's worker; resolves once all of them have started. */
  startWorkers() {
    return this.#ask('start', 'started');
  }

  /** From now on every process reports its handler starts; resolves once all of them do. */
  record() {
    return this.#ask('record', 'recording');
  }

  /**
   * `promise`, or the first failure of a worker process if that comes first.
   * @template T
   * @param {Promise<T>} promise
   * @returns {Promise<T>}
   */
  watch(promise) {
    // If a process failure wins, the phase's own rejection (a dropped schema, a timeout) comes later.
    promise.catch(() => {});
    return Promise.race([promise, this.failed]);
  }

  /**
   * Stops every process that still runs: a 'stop' message, SIGKILL for those not gone after
   * STOP_TIMEOUT_MS. Throws if one exited with an error, after all of them are gone.
   */
  async stop() {
    this.#stopping = true;
    const running = this.children.filter((child) => !hasExited(child));
    for (const child of running) {
      if (child.connected) child.send({ type: 'stop' });
      else child.kill('SIGTERM');
    }
    await withTimeout(Promise.all(running.map(exited)), STOP_TIMEOUT_MS, 'worker processes stopped').catch(
      () => {},
    );
    const stuck = running.filter((child) => !hasExited(child));
    for (const child of stuck) child.kill('SIGKILL');
    await Promise.all(stuck.map(exited));
    const failed = running.find((child) => child.exitCode !== 0);
    if (failed)
      throw new Error(
        `worker process ${failed.pid} ${stuck.includes(failed) ? 'did not stop: killed' : `exited with ${failed.exitCode ?? failed.signalCode}`}`,
      );
  }

  /**
   * Sends `request` to every process and waits for `reply` from each.
   * @param {string} request
   * @param {string} reply
   */
  async #ask(request, reply) {
    const replies = this.children.map((child) => nextMessage(child, reply));
    for (const child of this.children) child.send({ type: request });
    await this.watch(withTimeout(Promise.all(replies), REPLY_TIMEOUT_MS, `worker processes: ${reply}`));
  }

  /** @param {ChildProcess} child */
  #watchChild(child) {
    child.on('message', (/** @type {any} */ message) => {
      if (message.type === 'hit') this.recorder.hit(message.i, message.at);
      else if (message.type === 'error')
        this.#fail(new Error(`worker process ${child.pid}: ${message.message}`));
    });
    child.on('error', (error) => this.#fail(error));
    child.on('exit', (code, signal) => {
      if (!this.#stopping)
        this.#fail(new Error(`worker process ${child.pid} exited early (${code ?? signal})`));
    });
  }
}

/**
 * Resolves with the next message of `type` from `child`.
 * @param {ChildProcess} child
 * @param {string} type
 */
function nextMessage(child, type) {
  return new Promise((resolve) => {
    const listener = (/** @type {any} */ message) => {
      if (message?.type !== type) return;
      child.off('message', listener);
      resolve(message);
    };
    child.on('message', listener);
  });
}

/** @param {ChildProcess} child */
function hasExited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** @param {ChildProcess} child @returns {Promise<void>} */
function exited(child) {
  if (hasExited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @param {string} what
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms, what) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([promise, timeout]).finally(() => clearTimeout(timer)));
}

// ---------------------------------------------------------------------------------------------
// CPU time, from /proc (Linux): figures are NaN elsewhere.

/** The unit of the times in /proc/<pid>/stat (USER_HZ): 100 on practically every Linux. */
const CLOCK_TICKS = clockTicks();

function clockTicks() {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

/**
 * CPU seconds used so far by the PostgreSQL server and by the worker processes, and when.
 * The server is every process named `postgres` on this machine: backends, the WAL writer, the
 * checkpointer, autovacuum, and (through the postmaster's cutime and cstime) backends that exited.
 * So it counts the bench's own polls and pushes too, and anything else the server does meanwhile;
 * a server on another machine or in a VM is not seen at all (NaN). A backend that exits just before
 * the second snapshot, before the postmaster has waited for it, is missed: the worker processes'
 * connections stay open through the timed run, so that is at most a stray short-lived one.
 * @param {number[]} workerPids
 */
async function cpuSnapshot(workerPids) {
  const at = now();
  let server = 0;
  let seen = false;
  let names = [];
  try {
    names = await readdir('/proc');
  } catch {
    return { at, server: Number.NaN, workers: Number.NaN };
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readStat(name);
    if (stat?.comm !== 'postgres') continue;
    server += stat.seconds + stat.childSeconds;
    seen = true;
  }
  let workers = 0;
  for (const pid of workerPids) workers += (await readStat(String(pid)))?.seconds ?? Number.NaN;
  return { at, server: seen ? server : Number.NaN, workers };
}

/**
 * utime + stime of a process, and cutime + cstime (its children that exited and were waited for),
 * in seconds; undefined if it is gone.
 * @param {string} pid
 */
async function readStat(pid) {
  let text;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The name (field 2) is in parentheses and may hold spaces or parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  // From field 3 (state) on: utime is field 14, stime 15, cutime 16, cstime 17.
  const fields = text
    .slice(close + 2)
    .split(' ')
    .map(Number);
  const field = (/** @type {number} */ n) => fields[n - 3] ?? Number.NaN;
  return {
    comm,
    seconds: (field(14) + field(15)) / CLOCK_TICKS,
    childSeconds: (field(16) + field(17)) / CLOCK_TICKS,
  };
}

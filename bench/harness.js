/**
 * What every subject measures the same way: the clock, timed enqueue loops, timed processing
 * (worker start until the database shows every task finished), and start times recorded inside
 * handlers for push→start latency and delayed-task lateness.
 */

/** Milliseconds since the epoch, sub-millisecond, on the same clock in the pushing and the handling code. */
export const now = () => performance.timeOrigin + performance.now();

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** How often `timeProcess` asks the database whether all tasks are finished. */
export const POLL_MS = 20;

/**
 * @param {import('pg').Pool} db
 * @param {string} schema
 */
export async function dropSchema(db, schema) {
  await db.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
}

/** @param {string} name */
export function quoteIdent(name) {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * [start, end) ranges of at most `size` covering 0..n.
 * @param {number} n
 * @param {number} size
 */
export function* ranges(n, size) {
  for (let start = 0; start < n; start += size) yield [start, Math.min(n, start + size)];
}

/**
 * Pushes tasks 0..n-1 one at a time, each awaited before the next; returns the elapsed ms.
 * @param {number} n
 * @param {(i: number) => Promise<unknown>} pushOne
 */
export async function timeEnqueueOne(n, pushOne) {
  const started = now();
  for (let i = 0; i < n; i++) await pushOne(i);
  return now() - started;
}

/**
 * Pushes tasks 0..n-1 in batches of `batch`, one batch after the other; returns the elapsed ms.
 * @param {number} n
 * @param {number} batch
 * @param {(start: number, end: number) => Promise<unknown>} pushBatch
 */
export async function timeEnqueueBulk(n, batch, pushBatch) {
  const started = now();
  for (const [start, end] of ranges(n, batch)) await pushBatch(start, end);
  return now() - started;
}

/**
 * Times processing: from just before `start()` (the worker starts) until `unfinishedSql` (one row,
 * column `n`) returns 0. With `handled` (how many handlers have started, counted in this process),
 * the database is asked only once all n have started: a count(*) over a 100,000-row queue every
 * POLL_MS costs the machine a share of a core, which the subjects would otherwise pay for.
 * Without it, the database is asked every POLL_MS. Gives up after `capMs` and reports how many finished.
 * @param {{ db: import('pg').Pool, n: number, capMs: number, unfinishedSql: string,
 *   unfinishedParams?: unknown[], start: () => Promise<unknown>, handled?: () => number }} options
 * @returns {Promise<{ ms: number, done: number, capped: boolean }>}
 */
export async function timeProcess({ db, n, capMs, unfinishedSql, unfinishedParams = [], start, handled }) {
  const started = now();
  await start();
  while (handled && handled() < n && now() - started < capMs) await sleep(POLL_MS);
  for (;;) {
    const { rows } = await db.query(unfinishedSql, unfinishedParams);
    const unfinished = Number(rows[0]?.n ?? Number.NaN);
    const elapsed = now() - started;
    if (unfinished === 0) return { ms: elapsed, done: n, capped: false };
    if (elapsed >= capMs) return { ms: elapsed, done: n - unfinished, capped: true };
    await sleep(POLL_MS);
  }
}

/**
 * Start times of tasks, recorded by handlers: `hit(i)` is called first thing in the handler of task i.
 * Inactive (hit does nothing) unless a latency or lateness measure switched it on.
 */
export class StartRecorder {
  active = false;
  /** @type {Map<number, number>} */
  starts = new Map();
  /** How many times `hit` was called, active or not. */
  handled = 0;
  /** @type {Map<number, (at: number) => void>} */
  #waiters = new Map();
  /** @type {(() => void) | undefined} */
  #onHit;

  /**
   * @param {number} i
   * @param {number} [at] when it started, if another process saw it (on the same clock as `now`)
   */
  hit(i, at = now()) {
    this.handled++;
    if (!this.active) return;
    if (this.starts.has(i)) return;
    this.starts.set(i, at);
    this.#waiters.get(i)?.(at);
    this.#waiters.delete(i);
    this.#onHit?.();
  }

  /**
   * Resolves with the start time of task i, or rejects after `timeoutMs`.
   * @param {number} i
   * @param {number} timeoutMs
   * @returns {Promise<number>}
   */
  expect(i, timeoutMs) {
    const seen = this.starts.get(i);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(i);
        reject(new Error(`task ${i} did not start within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.set(i, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }

  /**
   * Resolves true once `count` tasks started, false if `timeoutMs` passes first.
   * @param {number} count
   * @param {number} timeoutMs
   */
  waitForCount(count, timeoutMs) {
    if (this.starts.size >= count) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#onHit = undefined;
        resolve(false);
      }, timeoutMs);
      this.#onHit = () => {
        if (this.starts.size < count) return;
        clearTimeout(timer);
        this.#onHit = undefined;
        resolve(true);
      };
    });
  }
}

/**
 * Waits (untimed) until `unfinishedSql` returns 0, so a subject is stopped only once the tasks of a
 * latency or lateness measure are stored as finished; stopping a worker mid-completion and dropping
 * its schema would fail that completion. Gives up quietly after `timeoutMs`.
 * @param {{ db: import('pg').Pool, unfinishedSql: string, unfinishedParams?: unknown[], timeoutMs?: number }} options
 */
export async function drain({ db, unfinishedSql, unfinishedParams = [], timeoutMs = 10_000 }) {
  const started = now();
  while (now() - started < timeoutMs) {
    const { rows } = await db.query(unfinishedSql, unfinishedParams);
    if (Number(rows[0]?.n) === 0) return;
    await sleep(POLL_MS);
  }
}

/**
 * Push→start latency with an idle worker: push task i, wait until its handler starts, pause, repeat.
 * Stops after `samples`, or once `capMs` has passed (a polling peer can take seconds per sample).
 * @param {{ recorder: StartRecorder, push: (i: number) => Promise<unknown>, samples: number,
 *   pauseMs: number, capMs: number, sampleTimeoutMs: number }} options
 * @returns {Promise<{ samples: number[], capped: boolean }>}
 */
export async function measureLatency({ recorder, push, samples, pauseMs, capMs, sampleTimeoutMs }) {
  recorder.active = true;
  const latencies = [];
  const started = now();
  let capped = false;
  for (let i = 0; i < samples; i++) {
    if (now() - started >= capMs) {
      capped = true;
      break;
    }
    await sleep(pauseMs);
    const startedAt = recorder.expect(i, sampleTimeoutMs);
    // If the push throws, its error is the one reported, not this timeout later.
    startedAt.catch(() => {});
    const pushedAt = now();
    await push(i);
    latencies.push((await startedAt) - pushedAt);
  }
  recorder.active = false;
  return { samples: latencies, capped };
}

/**
 * Delayed-task lateness: `count` tasks, pushed `spacingMs` apart, each due `aheadMs` after its push;
 * lateness = handler start − due time. Waits at most `aheadMs + capMs` after the last push for them
 * to start; one that has not started by then counts as started then (a lower bound).
 * @param {{ recorder: StartRecorder, pushAt: (i: number, due: Date) => Promise<unknown>, count: number,
 *   aheadMs: number, spacingMs: number, capMs: number }} options
 * @returns {Promise<{ samples: number[], capped: boolean, missing: number }>}
 */
export async function measureLateness({ recorder, pushAt, count, aheadMs, spacingMs, capMs }) {
  recorder.active = true;
  /** @type {number[]} */
  const dues = [];
  for (let i = 0; i < count; i++) {
    const due = Math.round(now()) + aheadMs;
    dues.push(due);
    await pushAt(i, new Date(due));
    await sleep(spacingMs);
  }
  const allStarted = await recorder.waitForCount(count, aheadMs + capMs);
  recorder.active = false;
  const gaveUpAt = now();
  const samples = [];
  let missing = 0;
  for (let i = 0; i < count; i++) {
    const at = recorder.starts.get(i);
    if (at === undefined) missing++;
    // A task not started by the cap is at least this late: the figures become lower bounds.
    samples.push((at ?? gaveUpAt) - /** @type {number} */ (dues[i]));
  }
  return { samples, capped: !allStarted, missing };
}

/**
 * The measures every subject takes the same way. A subject extends this and
 * provides `startWorker(c)`, `pushOne(i, due?)` (due: a Date the task is due at),
 * `pushRange(start, end)` (tasks start..end-1 in one call), `unfinished()` (what
 * `drain` and `timeProcess` count), and optionally `beforeLateness()` for what
 * delayed tasks need besides a worker.
 */
export class WorkerSubject {
  recorder = new StartRecorder();

  /** @param {import('./run.js').SubjectContext & { profile: any }} ctx */
  constructor(ctx) {
    this.ctx = ctx;
  }

  /** @param {number} n */
  enqueueOne(n) {
    return timeEnqueueOne(n, (i) => this.pushOne(i));
  }

  /** @param {number} n @param {number} batch */
  enqueueBulk(n, batch) {
    return timeEnqueueBulk(n, batch, (start, end) => this.pushRange(start, end));
  }

  /** Untimed: fills the queue before a processing run. @param {number} n @param {number} batch */
  async prepush(n, batch) {
    await this.enqueueBulk(n, batch);
  }

  /** @param {number} n @param {number} c @param {{ capMs: number }} options */
  async process(n, c, { capMs }) {
    await this.ctx.settle();
    const from = this.recorder.handled;
    return timeProcess({
      ...this.unfinished(),
      n,
      capMs,
      start: () => this.startWorker(c),
      handled: () => this.recorder.handled - from,
    });
  }

  /** @param {number} c @param {Omit<Parameters<typeof measureLatency>[0], 'recorder' | 'push'>} options */
  async latency(c, options) {
    await this.startWorker(c);
    await this.ctx.settle();
    const result = await measureLatency({
      ...options,
      recorder: this.recorder,
      push: (i) => this.pushOne(i),
    });
    await drain(this.unfinished());
    return result;
  }

  /** @param {number} c @param {Omit<Parameters<typeof measureLateness>[0], 'recorder' | 'pushAt'>} options */
  async lateness(c, options) {
    await this.beforeLateness();
    await this.startWorker(c);
    await this.ctx.settle();
    const result = await measureLateness({
      ...options,
      recorder: this.recorder,
      pushAt: (i, due) => this.pushOne(i, due),
    });
    await drain(this.unfinished());
    return result;
  }

  async beforeLateness() {}
}

/**
 * Runs every cleanup step in order even when one fails, then throws the first failure, so a failed
 * stop still closes pools and drops schemas (and the process can exit by itself).
 * @param {(() => Promise<unknown> | unknown)[]} steps
 */
export async function cleanUp(steps) {
  /** @type {unknown[]} */
  const failures = [];
  for (const step of steps) {
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
}

import { EventEmitter } from 'node:events';
import { ConfigError, isConnectionLost } from './errors.js';

export type ServiceState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** The two halves of a service's life; `Lifecycle` makes sure they run once each and never overlap. */
export interface LifecycleHooks {
  /** Starts the service; `signal` aborts when stop() is called while this still runs. */
  start(signal: AbortSignal): Promise<void>;
  /** Stops what start() started, whether or not it finished. */
  stop(): Promise<void>;
  /**
   * Keep the process alive from start to stop, as a listening server does. Its
   * timers and connections cannot be relied on for that: while the database is
   * away there may be no open socket and only unref'd timers. @default false
   */
  keepsProcessAlive?: boolean;
}

/**
 * The start/stop state machine every pgtq service shares. `stop()` is idempotent
 * and safe from any state: before start it does nothing, during start it aborts
 * the start and then stops, and every caller awaits the same stop. A start that
 * fails stops what it had started and rejects; one cut short by stop() resolves.
 */
export class Lifecycle {
  readonly #name: string;
  readonly #hooks: LifecycleHooks;
  readonly #abort = new AbortController();
  #state: ServiceState = 'idle';
  #started: Promise<void> | undefined;
  #stopped: Promise<void> | undefined;
  #keepAlive: NodeJS.Timeout | undefined;

  constructor(name: string, hooks: LifecycleHooks) {
    this.#name = name;
    this.#hooks = hooks;
  }

  get state(): ServiceState {
    return this.#state;
  }

  /** Aborts once stop() is called. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  start(): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'starting';
      if (this.#hooks.keepsProcessAlive) this.#keepAlive = setInterval(() => {}, 2 ** 31 - 1);
      this.#started = this.#start();
    }
    if (this.#started && (this.#state === 'starting' || this.#state === 'running')) return this.#started;
    return Promise.reject(new ConfigError(`${this.#name} was stopped; create a new one to start again`));
  }

  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #start(): Promise<void> {
    try {
      await this.#hooks.start(this.#abort.signal);
    } catch (error) {
      if (this.#abort.signal.aborted) return; // stop() cut the start short: it finishes the job
      this.#stopped = this.#stop(false);
      await this.#stopped;
      throw error;
    }
    if (this.#state === 'starting') this.#state = 'running';
  }

  /** `afterStart`: wait for a start under way first (not when the failed start itself stops). */
  async #stop(afterStart = true): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopping';
    this.#abort.abort();
    if (afterStart) await this.#started?.catch(() => {});
    try {
      await this.#hooks.stop();
    } finally {
      this.#state = 'stopped';
      clearInterval(this.#keepAlive);
    }
  }
}

/**
 * A service with the shared lifecycle: `start()`, `stop()` (idempotent, safe at any
 * time), `state` and `await using`, over `onStart` and `onStop`. It is an
 * EventEmitter of `E` for the services that report events.
 */
export abstract class Service<
  E extends Record<keyof E, unknown[]> = Record<never, never>,
> extends EventEmitter<E> {
  readonly #lifecycle: Lifecycle;

  constructor(name: string, options: { keepsProcessAlive?: boolean } = {}) {
    super();
    this.#lifecycle = new Lifecycle(name, {
      start: (signal) => this.onStart(signal),
      stop: () => this.onStop(),
      keepsProcessAlive: options.keepsProcessAlive ?? false,
    });
  }

  /** Starts the service; `signal` aborts when stop() is called meanwhile. */
  protected abstract onStart(signal: AbortSignal): Promise<void>;

  /** Stops what onStart started, whether or not it finished. */
  protected abstract onStop(): Promise<void>;

  get state(): ServiceState {
    return this.#lifecycle.state;
  }

  start(): Promise<void> {
    return this.#lifecycle.start();
  }

  stop(): Promise<void> {
    return this.#lifecycle.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Back-off after consecutive failures: 100 ms doubling, at most 30 s. */
export function backoffMs(failures: number): number {
  return Math.min(30_000, 100 * 2 ** Math.min(failures - 1, 20));
}

export interface PeriodicOptions {
  /** Names the service in errors. */
  name: string;
  /** Time between passes; called before each sleep, so it may jitter. */
  intervalMs: () => number;
  /** Reports a failed pass; the service goes on, sooner than its interval while failures last. */
  onError: (error: unknown, failures: number) => void;
  /** Run the first pass as soon as the service starts, rather than after one interval. @default true */
  runAtStart?: boolean;
}

/**
 * A service that does one pass of work (`pass`), sleeps, and does another: the
 * shape of the claim loop, heartbeat, presence, promoter, cron, rescuer and
 * history keeper. Its timer is unref'd (it never keeps a process alive);
 * `wake()` runs a pass now, and wake-ups during a pass coalesce into one more
 * pass right after it; `stop()` waits for the pass under way. A pass may return
 * how soon it wants the next one (ms), within the interval.
 */
export abstract class PeriodicService extends Service {
  readonly #options: PeriodicOptions;
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<void> | undefined;
  #again = false;
  #failures = 0;

  constructor(options: PeriodicOptions) {
    super(options.name);
    this.#options = options;
  }

  protected override async onStart(signal: AbortSignal): Promise<void> {
    // A first query that hangs (an unreachable host) must not hold up stop().
    await abortable(this.beforeStart(), signal);
    if (this.#options.runAtStart ?? true) this.wake();
    else this.#sleep(this.#options.intervalMs());
  }

  protected override async onStop(): Promise<void> {
    clearTimeout(this.#timer);
    while (this.#pass) await this.#pass;
    await this.afterStop();
  }

  /** One pass of work. May resolve with how many ms until the next pass is wanted; anything else means the interval. */
  protected abstract pass(): Promise<unknown>;

  /** Runs at start, before the first pass; a throw fails the start. */
  protected async beforeStart(): Promise<void> {}

  /** Runs at stop, once no pass is under way. */
  protected async afterStop(): Promise<void> {}

  /** Runs a pass now, or right after the one under way. */
  wake(): void {
    if (this.state !== 'running' && this.state !== 'starting') return;
    if (this.#pass) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#pass = this.#run().finally(() => {
      this.#pass = undefined;
      if (this.#again) {
        this.#again = false;
        this.wake();
      }
    });
  }

  async #run(): Promise<void> {
    let nextMs = this.#options.intervalMs();
    try {
      const wanted = await this.pass();
      this.#failures = 0;
      if (typeof wanted === 'number') nextMs = Math.min(nextMs, Math.max(0, wanted));
    } catch (error) {
      this.#failures++;
      this.#options.onError(error, this.#failures);
      nextMs = Math.min(nextMs, backoffMs(this.#failures) * (0.8 + Math.random() * 0.4));
    }
    if (!this.#again) this.#sleep(nextMs);
  }

  #sleep(ms: number): void {
    if (this.state !== 'running' && this.state !== 'starting') return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.wake(), ms);
    this.#timer.unref();
  }
}

/** Whether `promise` settled within `ms` (the timer never keeps the process alive). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `work`, and again, with back-off, while it fails because the connection
 * was cut under it (a restart, a terminated backend: see isConnectionLost), at
 * most `attempts` times in all; `stop()` true ends the retries early.
 */
export async function retryWhileConnectionLost<T>(
  work: () => Promise<T>,
  attempts: number,
  stop: () => boolean = () => false,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isConnectionLost(error) || attempt === attempts || stop()) throw error;
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
    }
  }
}

/** Settles with `work`, or rejects with the signal's reason as soon as it aborts (the work itself goes on). */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

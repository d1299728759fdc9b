import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { parse } from '../config.js';
import { asError, ConfigError } from '../errors.js';
import { Presence } from '../presence.js';
import type { Runtime } from '../runtime.js';
import { abortable, Service } from '../service.js';
import { openTelemetry } from '../tracing.js';
import { withBuiltInHandlers } from './built-in-handlers.js';
import { Claimer } from './claimer.js';
import { Completer } from './completer.js';
import { Heartbeat } from './heartbeat.js';
import {
  defaultPollIntervalMs,
  type EmitWorkerEvent,
  type ResolvedWorkerOptions,
  type WorkerEvents,
  type WorkerOptions,
  workerOptions,
} from './options.js';
import { watchScheduler } from './scheduler-watch.js';
import { TaskRunner } from './task-runner.js';

export type { TaskEnd, WorkerEvents, WorkerOptions } from './options.js';

/**
 * Runs the tasks of one queue with at most `concurrency` at a time: a claimer
 * fills the task runner's slots, a heartbeat keeps the leases alive, a completer
 * stores outcomes in batches, and a presence row shows the worker alive.
 */
export class Worker extends Service<WorkerEvents> {
  readonly id: string;
  readonly options: ResolvedWorkerOptions;
  readonly #runtime: Runtime;
  readonly #runner: TaskRunner;
  readonly #completer: Completer;
  readonly #claimer: Claimer;
  readonly #heartbeat: Heartbeat;
  readonly #presence: Presence;
  #unsubscribe: (() => void)[] = [];

  /** @internal use `queue.worker(options)` */
  constructor(runtime: Runtime, options: WorkerOptions = {}) {
    const parsed = parse(workerOptions, options, 'worker options');
    const resolved = Object.freeze({
      ...parsed,
      pollIntervalMs: parsed.pollIntervalMs ?? defaultPollIntervalMs(runtime.listening),
    });
    const id = resolved.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    super(`worker ${id}`, { keepsProcessAlive: true });
    this.options = resolved;
    this.id = id;
    runtime = withBuiltInHandlers(runtime, resolved.http);
    this.#runtime = runtime;
    const emit: EmitWorkerEvent = (event, ...args) => {
      (this.emit as (event: string, ...args: unknown[]) => boolean)(event, ...args);
    };
    const onError = (error: unknown) => this.emit('worker:error', asError(error));
    this.#completer = new Completer(runtime.statements, runtime.pool, runtime.logger);
    this.#runner = new TaskRunner({
      runtime,
      completer: this.#completer,
      concurrency: this.options.concurrency,
      hooks: this.options.hooks ?? {},
      emit,
      onSlotFree: () => this.#claimer.wake(),
      onProgress: () => this.#heartbeat.soon(),
    });
    const parts = { ...this.options, workerId: this.id };
    this.#claimer = new Claimer(runtime, this.#runner, parts, onError);
    this.#heartbeat = new Heartbeat(runtime, this.#runner, parts, onError);
    this.#presence = new Presence({
      statements: runtime.statements,
      db: runtime.pool,
      process: {
        id: this.id,
        kind: 'worker',
        queue: runtime.queue,
        details: { concurrency: this.options.concurrency, handlers: [...runtime.handlers.keys()] },
      },
      intervalMs: this.options.livenessIntervalMs,
      afterBeat: watchScheduler(runtime, emit),
      onError,
    });
  }

  /** Tasks running now. */
  get running(): number {
    return this.#runner.active;
  }

  /**
   * Connects (LISTEN, and a first heartbeat in the processes table) and starts
   * claiming; rejects if the database cannot be reached or is not migrated.
   * `stop()` stops claiming, gives back tasks claimed ahead, lets running tasks
   * finish within `shutdownGraceMs`, then aborts their signals; a task still
   * running after that is left to its lease, so another worker runs it again.
   */
  protected override async onStart(signal: AbortSignal): Promise<void> {
    if (this.#runtime.handlers.size === 0) {
      throw new ConfigError(
        `worker: queue "${this.#runtime.queue}" has no handlers; import the modules that register them`,
      );
    }
    const listener = this.#runtime.listener();
    const queue = this.#runtime.queue;
    // Connecting may take long (an unreachable host): stop() must not wait for it.
    this.#unsubscribe.push(
      await abortable(
        listener.on('task_ready', (payload) => payload === queue && this.#claimer.wake()),
        signal,
      ),
      await abortable(
        listener.on('task_cancel', () => this.#heartbeat.wake()),
        signal,
      ),
      await abortable(
        listener.on(
          'task_finished',
          (payload) => payload === queue && this.#claimer.heldByLimits && this.#claimer.wake(),
        ),
        signal,
      ),
      // Notifications sent while the connection was down are lost: look now.
      listener.onReconnect(() => this.#claimer.wake()),
    );
    await openTelemetry(); // loaded once, so that each task can ask activeTracing() at once
    await abortable(this.#presence.start(), signal);
    await this.#heartbeat.start();
    await this.#claimer.start();
    this.emit('start');
  }

  protected override async onStop(): Promise<void> {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#runner.stopStarting();
    await this.#claimer.stop();
    await this.#runner.releaseWaiting();
    await this.#runner.drain(this.options.shutdownGraceMs);
    await this.#heartbeat.stop();
    await this.#completer.drain();
    await this.#presence.stop();
    this.emit('stop');
  }
}

import { hostname } from 'node:os';
import type { Queryable } from './db/queryable.js';
import type { ProcessInput, Statements } from './db/statements.js';

/** A heartbeat holds this many intervals, so one late or lost beat does not count a process dead. */
const BEATS_HELD = 3;

/**
 * Keeps a worker's or scheduler's row in the `processes` table fresh while it
 * runs, so the `live_processes` view shows it and workers can tell whether any
 * scheduler is alive. A clean stop removes the row; a dead process's row
 * expires after three missed beats.
 */
export class Presence {
  readonly #statements: Statements;
  readonly #db: Queryable;
  readonly #process: ProcessInput;
  readonly #intervalMs: number;
  readonly #afterBeat: () => Promise<void>;
  readonly #onError: (error: unknown) => void;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: {
    statements: Statements;
    db: Queryable;
    process: Omit<ProcessInput, 'hostname' | 'pid'>;
    intervalMs: number;
    /** Runs after each beat (a worker looks for overdue tasks with no scheduler alive). */
    afterBeat?: () => Promise<void>;
    onError: (error: unknown) => void;
  }) {
    this.#statements = options.statements;
    this.#db = options.db;
    this.#process = { ...options.process, hostname: hostname(), pid: process.pid };
    this.#intervalMs = options.intervalMs;
    this.#afterBeat = options.afterBeat ?? (async () => {});
    this.#onError = options.onError;
  }

  /** Beats once, then every interval. Errors are reported, never thrown: the database may come back. */
  async start(): Promise<void> {
    await this.#beat();
    this.#timer = setInterval(() => void this.#beat(), this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    try {
      await this.#statements.removeProcess(this.#db, this.#process.id);
    } catch (error) {
      this.#onError(error); // the row expires on its own
    }
  }

  async #beat(): Promise<void> {
    try {
      await this.#statements.beatProcess(this.#db, this.#process, this.#intervalMs * BEATS_HELD);
      await this.#afterBeat();
    } catch (error) {
      this.#onError(error);
    }
  }
}

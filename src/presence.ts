import { hostname } from 'node:os';
import type { Queryable } from './db/queryable.js';
import type { Statements } from './db/statements.js';
import type { ProcessInput } from './db/task-rows.js';
import { notMigrated } from './errors.js';
import { PeriodicService, retryWhileConnectionLost } from './service.js';

/** A heartbeat holds this many intervals, so one late or lost beat does not count a process dead. */
const BEATS_HELD = 3;
/** Tries of the first beat when the connection is cut under it. */
const START_ATTEMPTS = 6;

export interface PresenceOptions {
  statements: Statements;
  db: Queryable;
  process: Omit<ProcessInput, 'hostname' | 'pid'>;
  intervalMs: number;
  /** Runs after each beat (a worker looks for overdue tasks with no scheduler alive). */
  afterBeat?: () => Promise<void>;
  /** A failed beat; the next one tries again (the database may come back). */
  onError: (error: unknown, failures: number) => void;
}

/**
 * Keeps a worker's or scheduler's row in the `processes` table fresh while it
 * runs, so the `live_processes` view shows it and workers can tell whether any
 * scheduler is alive. The first beat is part of start(), so a process that
 * cannot reach its schema fails at once. A clean stop waits for the beat under
 * way and then removes the row; a dead process's row expires after three
 * missed beats.
 */
export class Presence extends PeriodicService {
  readonly #options: PresenceOptions;
  readonly #process: ProcessInput;
  #beaten = false;

  constructor(options: PresenceOptions) {
    super({
      name: `presence of ${options.process.id}`,
      intervalMs: () => options.intervalMs,
      onError: options.onError,
      runAtStart: false,
    });
    this.#options = options;
    this.#process = { ...options.process, hostname: hostname(), pid: process.pid };
  }

  /** Records one beat; throws what the database says. */
  async runOnce(): Promise<void> {
    const { statements, db, intervalMs } = this.#options;
    await statements.beatProcess(db, this.#process, intervalMs * BEATS_HELD);
    this.#beaten = true;
    // A first beat that stop() did not wait for (it hung) may land after the row was removed.
    if (this.state === 'stopping' || this.state === 'stopped') await this.#remove();
  }

  /**
   * The first beat is the process's first query: an unmigrated schema is said
   * plainly here. A connection cut meanwhile (a restart, a terminated backend) is
   * not a reason to fail the start: it tries again a few times.
   */
  protected override async beforeStart(): Promise<void> {
    await retryWhileConnectionLost(() => this.runOnce(), START_ATTEMPTS).catch((error: unknown) => {
      throw notMigrated(error, this.#options.statements.schema);
    });
  }

  protected override async pass(): Promise<void> {
    await this.runOnce();
    await this.#options.afterBeat?.();
  }

  protected override async afterStop(): Promise<void> {
    if (this.#beaten) await this.#remove();
  }

  async #remove(): Promise<void> {
    try {
      await this.#options.statements.removeProcess(this.#options.db, this.#process.id);
    } catch (error) {
      this.#options.onError(error, 1); // the row expires on its own
    }
  }
}

import type pg from 'pg';
import type { ParentTask } from '../db/task-rows.js';
import type { Logger } from '../logger.js';

/** The task a handler is running for. */
export interface TaskInfo {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  readonly args: readonly unknown[];
  /** 1 on the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly priority: number;
  readonly key: string | null;
  /** Its group (see groupConcurrency), or null. */
  readonly group: string | null;
  /** When it was due (by the database's clock). */
  readonly runAt: Date;
  /** When this attempt started, in this process. */
  readonly startedAt: Date;
}

/** What a handler sees as `this`. */
export interface TaskContext {
  /** The task being run, or null when the handler was called directly as a function. */
  readonly task: TaskInfo | null;
  /** Aborted on worker shutdown (after the grace period), on timeout, and on cancellation. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  /**
   * For handlers defined with `transactional: true`: a client inside a transaction
   * that also records the task's outcome, so the handler's writes and the task's
   * completion commit together or not at all.
   */
  readonly tx: pg.PoolClient | undefined;
  /**
   * Reports how far the task is: any JSON (8 KiB at most), stored with the
   * worker's next heartbeat, shown in the views and by `ref.progress()`, and
   * kept in history as the last value. Does nothing when called directly.
   */
  progress(value: unknown): void;
  /**
   * The tasks this one ran after (the `after` push option), as they ended, with
   * their results: read in one query when first awaited. Empty for other tasks.
   */
  readonly parents: Promise<readonly ParentTask[]>;
}

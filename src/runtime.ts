import type pg from 'pg';
import type { Notifications } from './db/listener.js';
import type { Statements } from './db/statements.js';
import type { AnyHandler } from './handler/handler.js';
import type { PushOptions } from './handler/options.js';
import type { PushItem } from './handler/push.js';
import type { Logger } from './logger.js';
import type { ResultOptions, TaskRef } from './task-ref.js';

/**
 * What workers and schedulers need from their queue: its connections, its SQL,
 * its handlers and its logger. `PgTq` builds one; services depend on this, never
 * on `PgTq`, so data flows one way and a test can build a service without a queue.
 */
export interface Runtime {
  /** The queue's name. */
  readonly queue: string;
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly statements: Statements;
  readonly handlers: ReadonlyMap<string, AnyHandler>;
  readonly logger: Logger;
  /**
   * Whether a LISTEN connection wakes waiters; when false (the `listen: false`
   * connection option), workers, schedulers and result() poll more often instead.
   */
  readonly listening: boolean;
  /** The queue's shared LISTEN connection, opened on first use (or none: see `listening`). */
  listener(): Notifications;
  /** Checks and stores tasks of this queue (see pushTasks). */
  pushTasks(items: readonly PushItem[], options: PushOptions): Promise<TaskRef[]>;
  /** Waits for a task's result (see waitForResult). */
  result<R>(id: string, options?: ResultOptions): Promise<R>;
  /** A task's last reported progress (see TaskRef.progress). */
  progress(id: string): Promise<unknown>;
}

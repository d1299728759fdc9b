import { z } from 'zod/v4';
import { parse, taskName } from './config.js';
import { inBatches } from './db/batches.js';
import type { FlowGroupRow, PausedRow } from './db/flow-statements.js';
import type { Queryable } from './db/queryable.js';
import type { Statements } from './db/statements.js';
import type { ProcessRow, QueueSummaryRow, TaskRow } from './db/task-rows.js';
import { TaskNotFoundError, ValidationError } from './errors.js';
import { TASK_STATES, type TaskState } from './states.js';

/** Bulk operations (flush, retryFailed) work in batches this big, each its own transaction. */
const BATCH = 5_000;

const MAX_TASK_ID = 2n ** 63n - 1n; // ids are bigint

/** Whether `text` is a task id: a positive integer that fits a bigint, in decimal. */
export function isTaskId(text: string): boolean {
  return /^[1-9]\d{0,18}$/.test(text) && BigInt(text) <= MAX_TASK_ID;
}

const taskId = z.string().refine(isTaskId, 'expected a task id (a positive integer as a string)');
const taskIds = z.array(taskId).max(100_000);
const taskState = z.enum(TASK_STATES);

export const taskFilter = z
  .object({
    /** One state or several. @default any */
    state: z
      // a pipe rather than z.preprocess: its declared type exists in every zod that pgtq supports
      .pipe(
        z.transform((s: TaskState | TaskState[]) => (typeof s === 'string' ? [s] : s)),
        z.array(taskState).min(1),
      )
      .optional(),
    name: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** Its flow-control group. */
    group: z.string().min(1).optional(),
    /** @default 100 */
    limit: z.number().int().min(1).max(10_000).default(100),
    /** Only tasks with a smaller id: pass the last id of a page to get the next. */
    beforeId: taskId.optional(),
  })
  .strict();
export type TaskFilter = z.input<typeof taskFilter>;

/** Reports how many a bulk operation has done so far. */
export interface ProgressOptions {
  onProgress?: (done: number) => void;
}

/** What a cancel did to each task it found. */
export interface CancelResult {
  /** Pending tasks, now in history as cancelled. */
  cancelled: string[];
  /** Running tasks: their handlers' signals abort, and their workers store them as cancelled. */
  cancelRequested: string[];
}

/** Flow control of a queue now: what is paused, and each group with its limits. */
export interface FlowStatus {
  paused: PausedRow[];
  groups: FlowGroupRow[];
}

/**
 * Inspection and repair of one queue's tasks, over the SQL functions of
 * migrations/1763800000003_admin.sql (PgTq exposes each method).
 */
export class Admin {
  readonly #statements: Statements;
  readonly #db: Queryable;
  readonly #queue: string;

  constructor(statements: Statements, db: Queryable, queue: string) {
    this.#statements = statements;
    this.#db = db;
    this.#queue = queue;
  }

  async listTasks(filter: TaskFilter = {}): Promise<TaskRow[]> {
    const f = parse(taskFilter, filter, 'task filter', ValidationError);
    return this.#statements.listTasks(this.#db, {
      queue: this.#queue,
      states: f.state ?? null,
      name: f.name ?? null,
      key: f.key ?? null,
      limit: f.limit,
      beforeId: f.beforeId ?? null,
      group: f.group ?? null,
    });
  }

  async getTask(id: string): Promise<TaskRow> {
    const task = await this.#statements.getTask(this.#db, id);
    if (!task) throw new TaskNotFoundError(id);
    return task;
  }

  /** Counts by state and the oldest task's age: of this queue, or of every queue in the schema. */
  summary(options: { allQueues?: boolean } = {}): Promise<QueueSummaryRow[]> {
    return this.#statements.listQueueSummary(this.#db, options.allQueues ? null : this.#queue);
  }

  /** The workers and schedulers alive now, of every queue in the schema. */
  processes(): Promise<ProcessRow[]> {
    return this.#statements.listProcesses(this.#db);
  }

  async retry(ids: string | readonly string[]): Promise<string[]> {
    return this.#statements.retryTasks(this.#db, parseIds(ids));
  }

  async retryFailed(options: { name?: string } & ProgressOptions = {}): Promise<number> {
    const name = options.name ?? null;
    return inBatches(
      BATCH,
      () => this.#statements.retryFailed(this.#db, this.#queue, name, BATCH),
      options.onProgress,
    );
  }

  async cancel(ids: string | readonly string[], reason = 'cancelled'): Promise<CancelResult> {
    const rows = await this.#statements.cancelTasks(this.#db, parseIds(ids), reason);
    const result: CancelResult = { cancelled: [], cancelRequested: [] };
    for (const row of rows) {
      (row.outcome === 'cancelled' ? result.cancelled : result.cancelRequested).push(row.id);
    }
    return result;
  }

  async reschedule(id: string, runAt: Date): Promise<boolean> {
    const [valid] = parseIds(id) as [string];
    if (!(runAt instanceof Date) || Number.isNaN(runAt.getTime())) {
      throw new ValidationError('reschedule: runAt must be a valid Date');
    }
    return this.#statements.rescheduleTask(this.#db, valid, runAt);
  }

  async delete(ids: string | readonly string[]): Promise<string[]> {
    return this.#statements.deleteTasks(this.#db, parseIds(ids));
  }

  async length(): Promise<number> {
    return this.#statements.queueLength(this.#db, this.#queue);
  }

  async pause(name?: string): Promise<boolean> {
    return this.#statements.pauseQueue(this.#db, this.#queue, parseName(name));
  }

  async resume(name?: string): Promise<boolean> {
    return this.#statements.resumeQueue(this.#db, this.#queue, parseName(name));
  }

  async flow(options: { allQueues?: boolean } = {}): Promise<FlowStatus> {
    const queue = options.allQueues ? null : this.#queue;
    const [paused, groups] = await Promise.all([
      this.#statements.listPaused(this.#db, queue),
      this.#statements.listFlowGroups(this.#db, queue),
    ]);
    return { paused, groups };
  }

  async setGroupWeight(group: string, weight: number): Promise<void> {
    parse(groupWeight, { group, weight }, 'group weight', ValidationError);
    await this.#statements.setGroupWeight(this.#db, this.#queue, group, weight);
  }

  async flush(options: ProgressOptions = {}): Promise<number> {
    return inBatches(
      BATCH,
      () => this.#statements.flushQueue(this.#db, this.#queue, BATCH),
      options.onProgress,
    );
  }
}

const groupWeight = z.object({ group: z.string().min(1).max(200), weight: z.number().gt(0).max(1000) });

function parseName(name: string | undefined): string | null {
  return name === undefined ? null : parse(taskName, name, 'task name', ValidationError);
}

function parseIds(ids: string | readonly string[]): string[] {
  if (typeof ids === 'string') return [parse(taskId, ids, 'task id', ValidationError)];
  return parse(taskIds, ids, 'task ids', ValidationError);
}

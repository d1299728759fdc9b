import type { Admin, CancelResult, FlowStatus, ProgressOptions, TaskFilter } from './admin.js';
import type { ProcessRow, QueueSummaryRow, TaskRow } from './db/task-rows.js';

/** A queue's inspection and repair (PgTq extends it): each method is a call of its Admin. */
export abstract class QueueAdmin {
  /** @internal */
  protected abstract readonly admin: Admin;

  /** One task by id, pending or finished. */
  getTask(id: string): Promise<TaskRow> {
    return this.admin.getTask(id);
  }

  /** Tasks of this queue, pending or finished, newest first. */
  listTasks(filter: TaskFilter = {}): Promise<TaskRow[]> {
    return this.admin.listTasks(filter);
  }

  /** Counts by state and the age of the oldest task: of this queue, or with `allQueues` of every queue in the schema. */
  summary(options: { allQueues?: boolean } = {}): Promise<QueueSummaryRow[]> {
    return this.admin.summary(options);
  }

  /** The workers and schedulers alive now (every queue of the schema), from their heartbeats. */
  processes(): Promise<ProcessRow[]> {
    return this.admin.processes();
  }

  /** Makes failed or cancelled tasks ready again with fresh attempts; returns the ids retried. */
  retry(ids: string | readonly string[]): Promise<string[]> {
    return this.admin.retry(ids);
  }

  /** Retries every failed task of this queue (of one task name, if given); returns how many. */
  retryFailed(options: { name?: string } & ProgressOptions = {}): Promise<number> {
    return this.admin.retryFailed(options);
  }

  /** Cancels pending tasks at once, and running ones by aborting their signal wherever they run. */
  cancel(ids: string | readonly string[], reason?: string): Promise<CancelResult> {
    return this.admin.cancel(ids, reason);
  }

  /** Moves a pending task to run at `runAt`; false if it is not pending. */
  reschedule(id: string, runAt: Date): Promise<boolean> {
    return this.admin.reschedule(id, runAt);
  }

  /** Deletes pending or finished tasks for good (running ones: cancel them); returns the ids deleted. */
  delete(ids: string | readonly string[]): Promise<string[]> {
    return this.admin.delete(ids);
  }

  /** Pending (scheduled or ready) tasks of this queue. */
  length(): Promise<number> {
    return this.admin.length();
  }

  /** Nothing of this queue (or of one task name) starts until resumed; true if it was not paused. */
  pause(name?: string): Promise<boolean> {
    return this.admin.pause(name);
  }

  /** Resumes what `pause` paused and wakes the workers; true if it was paused. */
  resume(name?: string): Promise<boolean> {
    return this.admin.resume(name);
  }

  /** What is paused, and each group with flow control: its tasks, limits, and what holds it back. */
  flow(options: { allQueues?: boolean } = {}): Promise<FlowStatus> {
    return this.admin.flow(options);
  }

  /** A group's weight in the turns of this queue (a group of weight 3 takes 3 turns to another's 1). */
  setGroupWeight(group: string, weight: number): Promise<void> {
    return this.admin.setGroupWeight(group, weight);
  }

  /** Deletes this queue's pending tasks; running tasks and history stay. Returns how many. */
  flush(options: ProgressOptions = {}): Promise<number> {
    return this.admin.flush(options);
  }
}

import type { Queryable } from './queryable.js';
import { SqlFiles } from './sql-files.js';
import type { ParentTask, PushInput } from './task-rows.js';

/** The limits of one task name, as stored (see set_flow_limits in migrations/). */
export interface FlowLimitsInput {
  name: string;
  groupConcurrency: number | null;
  rateLimit: { limit: number; periodMs: number; perGroup: boolean } | null;
}

/** A group with flow control, from the flow_status view. */
export interface FlowGroupRow {
  queue: string;
  name: string;
  group_key: string;
  ready: number;
  running: number;
  scheduled: number;
  group_concurrency: number | null;
  rate_limit: number | null;
  rate_period_ms: number | null;
  rate_per_group: boolean;
  recent_starts: number;
  /** What holds its ready tasks back now. */
  held_by: 'paused' | 'group_concurrency' | 'rate_limit' | null;
  /** Its weight in the turns (see set_group_weight). */
  weight: number;
}

export interface PausedRow {
  queue: string;
  /** null: the whole queue */
  name: string | null;
  paused_at: Date;
}

/** The parameters of sql/task_push_one.sql, which task_push_replace.sql shares. */
export function pushOneValues(task: PushInput, now: Date | null): unknown[] {
  return [
    task.queue,
    task.name,
    task.argsJson ?? JSON.stringify(task.args),
    task.priority ?? null,
    task.run_at ?? null,
    task.delay_ms ?? null,
    task.max_attempts ?? null,
    task.key ?? null,
    now,
    task.group_key ?? null,
    task.ttl_ms ?? null,
  ];
}

/** The statements of flow control (limits, pauses, time to live) and of tasks that run after others. */
export class FlowStatements extends SqlFiles {
  /** Sets each name's dead-letter queue (null: none); see sql/dead_letters_set.sql. */
  async setDeadLetters(
    db: Queryable,
    queue: string,
    entries: readonly { name: string; target: string | null }[],
  ): Promise<void> {
    await this.run(db, 'dead_letters_set', [queue, entries.map((e) => e.name), entries.map((e) => e.target)]);
  }

  /** Records which names have a handler with undo; see sql/undo_names_set.sql. */
  async setUndoNames(db: Queryable, queue: string, entries: readonly { name: string; undoable: boolean }[]) {
    await this.run(db, 'undo_names_set', [queue, entries.map((e) => e.name), entries.map((e) => e.undoable)]);
  }

  /** Sets the limits of task names of `queue` (removes them where both are null), in one statement. */
  async setFlowLimits(db: Queryable, queue: string, limits: readonly FlowLimitsInput[]): Promise<void> {
    await this.run(db, 'flow_limits_set', [
      queue,
      limits.map((l) => l.name),
      limits.map((l) => l.groupConcurrency),
      limits.map((l) => l.rateLimit?.limit ?? null),
      limits.map((l) => l.rateLimit?.periodMs ?? null),
      limits.map((l) => l.rateLimit?.perGroup ?? false),
    ]);
  }

  /** One task with a key, in the place of the pending one with that key (see sql/task_push_replace.sql). */
  pushReplace(db: Queryable, task: PushInput, now: Date | null = null) {
    return this.run<{ id: string; inserted: boolean }>(db, 'task_push_replace', [
      ...pushOneValues(task, now),
      task.supersede === true,
    ]);
  }

  async expireTasks(db: Queryable, limit: number, now: Date | null = null): Promise<number> {
    const [row] = await this.run<{ expired: number }>(db, 'task_expire', [limit, now]);
    return row?.expired ?? 0;
  }

  async pruneFlowGroups(db: Queryable, limit: number): Promise<number> {
    const [row] = await this.run<{ pruned: number }>(db, 'flow_groups_prune', [limit]);
    return row?.pruned ?? 0;
  }

  async setGroupWeight(db: Queryable, queue: string, group: string, weight: number): Promise<void> {
    await this.run(db, 'group_weight_set', [queue, group, weight]);
  }

  /** True if it was running and is now paused. */
  async pauseQueue(db: Queryable, queue: string, name: string | null): Promise<boolean> {
    const [row] = await this.run<{ changed: boolean }>(db, 'queue_pause', [queue, name]);
    return row?.changed === true;
  }

  /** True if it was paused and now runs. */
  async resumeQueue(db: Queryable, queue: string, name: string | null): Promise<boolean> {
    const [row] = await this.run<{ changed: boolean }>(db, 'queue_resume', [queue, name]);
    return row?.changed === true;
  }

  listFlowGroups(db: Queryable, queue: string | null) {
    return this.run<FlowGroupRow>(db, 'flow_status_list', [queue]);
  }

  listPaused(db: Queryable, queue: string | null) {
    return this.run<PausedRow>(db, 'paused_list', [queue]);
  }

  /** Tasks that run after others, in one statement; returns their ids in order (see sql/task_push_after.sql). */
  async pushAfter(db: Queryable, tasks: readonly PushInput[], now: Date | null = null): Promise<string[]> {
    const items = tasks.map((task) => ({
      task: {
        queue: task.queue,
        name: task.name,
        args: task.args,
        priority: task.priority,
        run_at: task.run_at,
        delay_ms: task.delay_ms,
        max_attempts: task.max_attempts,
        group_key: task.group_key,
        ttl_ms: task.ttl_ms,
      },
      parents: task.after?.parents,
      after_failure: task.after?.onFailure,
    }));
    const rows = await this.run<{ id: string }>(db, 'task_push_after', [JSON.stringify(items), now]);
    return rows.map((row) => row.id);
  }

  /** The parents of task `id` with how they ended, in id order (see sql/task_parents_list.sql). */
  listParents(db: Queryable, id: string) {
    return this.run<ParentTask>(db, 'task_parents_list', [id]);
  }
}

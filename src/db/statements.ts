import { defaultLimits, type PayloadLimits } from '../config.js';
import { FlowStatements, pushOneValues } from './flow-statements.js';
import type { Queryable } from './queryable.js';
import type {
  DueScheduleRow,
  PendingScheduleRow,
  ScheduleInput,
  ScheduleNextInput,
  ScheduleRow,
} from './schedule-rows.js';
import type { SqlOptions } from './sql-files.js';
import type {
  Claimed,
  ClaimedRow,
  ClaimInput,
  FinishInput,
  ProcessInput,
  ProcessRow,
  PushInput,
  QueueSummaryRow,
  RetryInput,
  TaskCompaction,
  TaskListInput,
  TaskRow,
} from './task-rows.js';

/** The typed wrapper of each file in sql/, for one schema. */
export class Statements extends FlowStatements {
  /** How much JSON a task may carry: here, since every path that stores arguments or results has these. */
  readonly limits: PayloadLimits;

  constructor(schema: string, limits: PayloadLimits = defaultLimits, options: SqlOptions = {}) {
    super(schema, options);
    this.limits = limits;
  }

  pushMany(db: Queryable, tasks: readonly PushInput[], now: Date | null = null) {
    return this.run<{ ord: string; id: string | null; inserted: boolean }>(db, 'task_push_many', [
      tasks.some((task) => task.argsJson !== undefined)
        ? `[${tasks.map(taskJson).join(',')}]`
        : JSON.stringify(tasks),
      now,
    ]);
  }

  /** One task: the same rules as pushMany, in a cheaper statement (see sql/task_push_one.sql). */
  pushOne(db: Queryable, task: PushInput, now: Date | null = null) {
    return this.run<{ id: string | null; inserted: boolean }>(db, 'task_push_one', pushOneValues(task, now));
  }

  async claimMany(db: Queryable, claim: ClaimInput, now: Date | null = null): Promise<Claimed> {
    const { queue, names, limit, free, holdMs, leaseId, leaseMs, workerId } = claim;
    const args = [queue, names, limit, leaseId, leaseMs, workerId, now, free ?? limit, holdMs ?? 0];
    const rows = await this.run<ClaimedRow & { wake_in_ms: number | null }>(db, 'task_claim_many', args);
    const last = rows.at(-1);
    if (last?.id !== null) return { tasks: rows, held: null };
    return { tasks: rows.slice(0, -1), held: { wakeInMs: last.wake_in_ms } };
  }

  /** Returns the ids that were finished; a missing id lost its lease. */
  finishMany(db: Queryable, outcomes: readonly FinishInput[], now: Date | null = null) {
    return this.run<{ id: string }>(db, 'task_finish_many', [JSON.stringify(outcomes), now]);
  }

  /** Returns the ids that were sent back; a missing id lost its lease. */
  retryMany(db: Queryable, retries: readonly RetryInput[], now: Date | null = null) {
    return this.run<{ id: string }>(db, 'task_retry_many', [JSON.stringify(retries), now]);
  }

  /** Returns the ids that went back to ready; a missing id lost its lease. */
  releaseMany(db: Queryable, held: readonly { id: string; lease_id: string }[]) {
    return this.run<{ id: string }>(db, 'task_release_many', [JSON.stringify(held)]);
  }

  /** Extends the leases still held; see sql/task_heartbeat_many.sql. */
  heartbeatMany(
    db: Queryable,
    held: readonly { id: string; lease_id: string; progress?: unknown }[],
    leaseMs: number,
    now: Date | null = null,
  ) {
    return this.run<{ id: string; cancel_requested: boolean }>(db, 'task_heartbeat_many', [
      JSON.stringify(held),
      leaseMs,
      now,
    ]);
  }

  /** Creates the missing daily history partitions of [day, day + days); returns how many. */
  async createHistoryPartitions(db: Queryable, days: number, day: Date | null = null): Promise<number> {
    const [row] = await this.run<{ created: number }>(db, 'history_partitions_create', [day, days]);
    return row?.created ?? 0;
  }

  async promoteDue(db: Queryable, limit: number, now: Date | null = null): Promise<number> {
    const [row] = await this.run<{ promoted: number }>(db, 'task_promote_due', [limit, now]);
    return row?.promoted ?? 0;
  }

  /** Milliseconds until the next scheduled task is due (≤ 0: one is due), or null if none is scheduled. */
  async nextDueInMs(db: Queryable, now: Date | null = null): Promise<number | null> {
    const [row] = await this.run<{ due_in_ms: string | null }>(db, 'task_next_due', [now]);
    return row?.due_in_ms == null ? null : Number(row.due_in_ms);
  }

  /** Rescues expired leases from `from` (null: all) up to now; see sql/task_rescue_expired.sql. */
  async rescueExpired(db: Queryable, limit: number, now: Date | null = null, from: Date | null = null) {
    type Rescued = { retried: number; failed: number; scanned_to: Date };
    const [row] = await this.run<Rescued>(db, 'task_rescue_expired', [limit, now, from]);
    return row ?? { retried: 0, failed: 0, scanned_to: now ?? new Date() };
  }

  /** Truncates the ready ring's spent segments and moves insertion on; see rotate_ready in migrations/. */
  async rotateReady(db: Queryable): Promise<{ segment: number; truncated: number }> {
    const [row] = await this.run<{ segment: number; truncated: number }>(db, 'ready_rotate', []);
    return row ?? { segment: 0, truncated: 0 };
  }

  /** Gives back the space a held snapshot made `tasks` grow by, when cheap; see compact_tasks in migrations/. */
  async compactTasks(db: Queryable): Promise<TaskCompaction> {
    return (await this.run<TaskCompaction>(db, 'task_compact', []))[0] as TaskCompaction;
  }

  /** Vacuums `tasks`, when compactTasks asks for it. */
  vacuumTasks(db: Queryable) {
    return this.run(db, 'task_vacuum', []);
  }

  listHistoryPartitions(db: Queryable) {
    return this.run<{ name: string; ends_at: Date; has_failed: boolean }>(db, 'history_partitions_list', []);
  }

  async getTask(db: Queryable, id: string): Promise<TaskRow | undefined> {
    const rows = await this.run<TaskRow>(db, 'task_get', [id]);
    return rows[0];
  }

  /** Stores the compensation of a succeeded task, at most once; see sql/task_undo.sql. */
  async undoTask(db: Queryable, id: string) {
    const [row] = await this.run<{ id: string; queue: string; name: string; inserted: boolean }>(
      db,
      'task_undo',
      [id],
    );
    return row as { id: string; queue: string; name: string; inserted: boolean };
  }

  // Administration: each calls a function of migrations/1763800000003_admin.sql.

  listTasks(db: Queryable, { queue, states, name, key, limit, beforeId, group }: TaskListInput) {
    return this.run<TaskRow>(db, 'task_list', [queue, states, name, key, limit, beforeId, group]);
  }

  async retryTasks(db: Queryable, ids: readonly string[]): Promise<string[]> {
    const rows = await this.run<{ id: string }>(db, 'task_retry_ids', [ids]);
    return rows.map((row) => row.id);
  }

  async retryFailed(db: Queryable, queue: string, name: string | null, limit: number): Promise<number> {
    const [row] = await this.run<{ retried: number }>(db, 'task_retry_failed', [queue, name, limit]);
    return row?.retried ?? 0;
  }

  cancelTasks(db: Queryable, ids: readonly string[], reason: string) {
    return this.run<{ id: string; outcome: 'cancelled' | 'cancel_requested' }>(db, 'task_cancel', [
      ids,
      reason,
    ]);
  }

  async rescheduleTask(db: Queryable, id: string, runAt: Date): Promise<boolean> {
    const [row] = await this.run<{ moved: boolean }>(db, 'task_reschedule', [id, runAt]);
    return row?.moved ?? false;
  }

  async deleteTasks(db: Queryable, ids: readonly string[]): Promise<string[]> {
    const rows = await this.run<{ id: string }>(db, 'task_delete', [ids]);
    return rows.map((row) => row.id);
  }

  async queueLength(db: Queryable, queue: string): Promise<number> {
    const [row] = await this.run<{ length: number }>(db, 'queue_length', [queue]);
    return row?.length ?? 0;
  }

  async flushQueue(db: Queryable, queue: string, limit: number): Promise<number> {
    const [row] = await this.run<{ deleted: number }>(db, 'queue_flush', [queue, limit]);
    return row?.deleted ?? 0;
  }

  // Liveness: sql/process_*.sql, used by src/presence.ts.

  async beatProcess(db: Queryable, p: ProcessInput, holdMs: number): Promise<void> {
    await this.run(db, 'process_beat', [
      p.id,
      p.kind,
      p.queue,
      p.hostname,
      p.pid,
      JSON.stringify(p.details),
      holdMs,
    ]);
  }

  async removeProcess(db: Queryable, id: string): Promise<void> {
    await this.run(db, 'process_remove', [id]);
  }

  listProcesses(db: Queryable) {
    return this.run<ProcessRow>(db, 'process_list', []);
  }

  listQueueSummary(db: Queryable, queue: string | null) {
    return this.run<QueueSummaryRow>(db, 'queue_summary_list', [queue]);
  }

  async checkScheduler(db: Queryable, queue: string, graceMs: number) {
    type Check = { overdue: number; scheduler_alive: boolean };
    const [row] = await this.run<Check>(db, 'process_scheduler_check', [queue, graceMs]);
    return row ?? { overdue: 0, scheduler_alive: true };
  }

  // Cron schedules: sql/schedule_*.sql, used by src/scheduler/schedules.ts and cron-service.ts.

  async upsertSchedule(db: Queryable, s: ScheduleInput): Promise<void> {
    await this.run(db, 'schedule_upsert', [
      s.queue,
      s.name,
      s.cron,
      s.taskName,
      JSON.stringify(s.args),
      s.tz,
      s.priority,
      s.maxAttempts,
      s.catchUp,
      s.backfillLimit,
    ]);
  }

  async deleteSchedule(db: Queryable, queue: string, name: string): Promise<boolean> {
    const [row] = await this.run<{ removed: boolean }>(db, 'schedule_delete', [queue, name]);
    return row?.removed ?? false;
  }

  listSchedules(db: Queryable, queue: string | null) {
    return this.run<ScheduleRow>(db, 'schedule_list', [queue]);
  }

  listPendingSchedules(db: Queryable, limit: number, now: Date | null = null) {
    return this.run<PendingScheduleRow>(db, 'schedule_list_pending', [limit, now]);
  }

  async setScheduleNext(db: Queryable, s: ScheduleNextInput): Promise<void> {
    await this.run(db, 'schedule_set_next', [s.queue, s.name, s.cron, s.tz, s.nextFireAt, s.error]);
  }

  async lockDueSchedule(
    db: Queryable,
    queue: string,
    name: string,
    now: Date | null = null,
  ): Promise<DueScheduleRow | undefined> {
    const [row] = await this.run<DueScheduleRow>(db, 'schedule_lock_due', [queue, name, now]);
    return row;
  }

  /** Returns the fire times not recorded before. */
  async claimScheduleFires(db: Queryable, queue: string, name: string, fireAts: readonly Date[]) {
    const rows = await this.run<{ fire_at: Date }>(db, 'schedule_claim_fires', [queue, name, fireAts]);
    return rows.map((row) => row.fire_at);
  }

  fireSchedule(
    db: Queryable,
    s: { queue: string; name: string; claimed: readonly Date[]; nextFireAt: Date; latestDue: Date | null },
    now: Date | null = null,
  ) {
    return this.run<{ fire_at: Date; task_id: string }>(db, 'schedule_fire', [
      s.queue,
      s.name,
      s.claimed,
      s.nextFireAt,
      s.latestDue,
      now,
    ]);
  }

  async nextScheduleWake(db: Queryable, now: Date | null = null): Promise<Date | null> {
    const [row] = await this.run<{ wake_at: Date | null }>(db, 'schedule_next_wake', [now]);
    return row?.wake_at ?? null;
  }
}

/** One task of push_many's JSON, with the JSON of its arguments spliced in if push already wrote it. */
function taskJson({ argsJson, ...task }: PushInput): string {
  if (argsJson === undefined) return JSON.stringify(task);
  return `${JSON.stringify({ ...task, args: undefined }).slice(0, -1)},"args":${argsJson}}`;
}

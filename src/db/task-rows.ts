import type { FinishedState, TaskState } from '../states.js';

// The rows the statements of sql/ take and return, as node-postgres hands them over.

export interface ClaimedRow {
  id: string;
  queue: string;
  name: string;
  args: unknown[];
  priority: number;
  attempts: number;
  max_attempts: number;
  key: string | null;
  group_key: string | null;
  /** run_at, in seconds since the epoch */
  run_at_s: number;
  lease_expires_at: Date;
  /** Under a rate limit: start within this many ms of the claim, or give the task back (see sql/task_claim_many.sql). */
  start_within_ms: number | null;
  /** The trace context of its push, read after the claim while tracing (see src/tracing.ts). */
  trace?: { traceparent: string; tracestate?: string | null } | undefined;
}

/** What one claim took, and whether flow-control limits held more back. */
export interface Claimed {
  tasks: ClaimedRow[];
  /** null: nothing held back; else wakeInMs, when a rate limit lets the next start (null: when a task finishes). */
  held: { wakeInMs: number | null } | null;
}

export interface TaskRow {
  id: string;
  queue: string;
  name: string;
  args: unknown[];
  state: TaskState;
  priority: number;
  run_at: Date;
  attempts: number;
  max_attempts: number;
  key: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  result: unknown;
  error: string | null;
  /** What its handler last reported (see TaskContext.progress), or null. */
  progress: unknown;
  /** Its flow-control group, or null. */
  group_key: string | null;
  /** The worker running it, or that last ran it; null when it never started. */
  worker_id: string | null;
}

export interface PushInput {
  queue: string;
  name: string;
  args: readonly unknown[];
  /** The JSON of `args`, if push already wrote it (to measure large arguments): sent as is. */
  argsJson?: string | undefined;
  priority?: number | undefined;
  run_at?: Date | undefined;
  delay_ms?: number | undefined;
  max_attempts?: number | undefined;
  key?: string | undefined;
  group_key?: string | undefined;
  ttl_ms?: number | undefined;
  /** Take the place of the pending task with the same key (onConflict: 'replace'). */
  replace?: boolean | undefined;
  /** Also ask a running task with the same key to stop. */
  supersede?: boolean | undefined;
  /** Run once these tasks have succeeded (see push_after in migrations/). */
  after?: { parents: string[]; onFailure: 'cancel' | 'run' | 'undo' } | undefined;
}

export interface TaskListInput {
  /** null: every queue of the schema */
  queue: string | null;
  states: readonly TaskState[] | null;
  name: string | null;
  key: string | null;
  limit: number;
  beforeId: string | null;
  group: string | null;
}

export interface ProcessInput {
  id: string;
  kind: 'worker' | 'scheduler';
  queue: string;
  hostname: string;
  pid: number;
  details: Record<string, unknown>;
}

export interface FinishInput {
  id: string;
  lease_id: string;
  state: FinishedState;
  started_at?: Date | undefined;
  result?: unknown;
  error?: string | null;
  progress?: unknown;
}

export interface RetryInput {
  id: string;
  lease_id: string;
  delay_ms: number;
  error: string;
}

/** A task another ran after (TaskContext.parents), as it ended. */
export interface ParentTask {
  id: string;
  name: string;
  state: 'succeeded' | 'failed' | 'cancelled';
  result: unknown;
  error: string | null;
}

/** A row of the queue_summary view. */
export interface QueueSummaryRow {
  queue: string;
  state: TaskState;
  count: number;
  oldest_run_at: Date;
  /** The oldest task's age to the second, as PostgreSQL prints an interval ('00:00:02'). */
  oldest_age: string;
  oldest_age_ms: number;
}

/** A worker or scheduler alive now (the live_processes view). */
export interface ProcessRow {
  kind: 'worker' | 'scheduler';
  queue: string;
  id: string;
  hostname: string;
  pid: number;
  running: number;
  started_at: Date;
  heartbeat_at: Date;
  silent_ms: number;
  details: Record<string, unknown>;
}

/** What a worker asks for when it claims; see sql/task_claim_many.sql. */
export interface ClaimInput {
  queue: string;
  /** The task names it has handlers for; null: any. */
  names: readonly string[] | null;
  limit: number;
  /** The worker's free slots: tasks under a rate limit nearly reached are claimed only for these. @default limit */
  free?: number;
  /** How long a task under a rate limit may wait for a slot before it must go back, ms. @default 0 (none may) */
  holdMs?: number;
  leaseId: string;
  leaseMs: number;
  workerId: string;
}

/** What one compaction pass over `tasks` did; see compact_tasks in migrations/. */
export interface TaskCompaction {
  outcome: 'compacted' | 'small' | 'vacuum' | 'busy' | 'locked';
  /** Rows copied, or counted before giving up (null: not counted). */
  live_rows: number | null;
  /** Size of the table with its indexes and TOAST, before and after (null: not compacted). */
  bytes_before: number;
  bytes_after: number | null;
}

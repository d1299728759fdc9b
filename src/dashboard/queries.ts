import type { Queryable } from '../db/queryable.js';
import { SqlFiles } from '../db/sql-files.js';
import type { TaskState } from '../states.js';

export interface ThroughputRow {
  minute: Date;
  succeeded: number;
  failed: number;
  cancelled: number;
}

export interface RunningRow {
  id: string;
  queue: string;
  name: string;
  worker_id: string | null;
  started_at: Date;
  attempts: number;
  max_attempts: number;
  progress: unknown;
}

export interface TaskLinkRow {
  role: 'parent' | 'child';
  id: string;
  name: string;
  state: TaskState;
}

export interface FailureRow {
  queue: string;
  name: string;
  error: string;
  count: number;
  first_failed_at: Date;
  last_failed_at: Date;
  last_task_id: string;
}

/** A row of sql/metrics_finished.sql: the bucket indexes are width_bucket's (0: below the first bound). */
export interface FinishedBucketRow {
  until: Date | null;
  queue: string;
  name: string;
  state: string;
  wait_bucket: number | null;
  run_bucket: number | null;
  count: number;
  wait_sum: number;
  run_sum: number;
}

/** The dashboard's own queries, each a file in sql/; the rest it shares with the admin API. */
export class DashboardStatements extends SqlFiles {
  async ping(db: Queryable): Promise<void> {
    await this.run(db, 'database_ping', []);
  }

  async queues(db: Queryable): Promise<string[]> {
    return (await this.run<{ queue: string }>(db, 'queue_list', [])).map((row) => row.queue);
  }

  throughput(db: Queryable, queue: string | null, minutes: number) {
    return this.run<ThroughputRow>(db, 'dashboard_throughput', [queue, minutes]);
  }

  running(db: Queryable, queue: string | null, limit: number) {
    return this.run<RunningRow>(db, 'dashboard_running', [queue, limit]);
  }

  taskLinks(db: Queryable, id: string) {
    return this.run<TaskLinkRow>(db, 'task_links_list', [id]);
  }

  failures(db: Queryable, queue: string | null, limit: number) {
    return this.run<FailureRow>(db, 'failure_list', [queue, limit]);
  }

  async retryFailureGroup(
    db: Queryable,
    group: { queue: string; name: string; error: string },
    limit: number,
  ) {
    const [row] = await this.run<{ retried: number }>(db, 'failure_group_retry', [
      group.queue,
      group.name,
      group.error,
      limit,
    ]);
    return row?.retried ?? 0;
  }

  finishedSince(db: Queryable, since: Date | null, bounds: readonly number[]) {
    return this.run<FinishedBucketRow>(db, 'metrics_finished', [since, bounds]);
  }
}

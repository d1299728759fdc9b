import { inBatches } from '../db/batches.js';
import { SqlFiles } from '../db/sql-files.js';
import type { TaskRow } from '../db/task-rows.js';
import { TimeoutError } from '../errors.js';
import type { PgTq } from '../pgtq.js';

/** How one attempt of a task ended, in a test's run of its queue. */
export interface TaskRun {
  id: string;
  name: string;
  args: readonly unknown[];
  attempt: number;
  outcome: 'succeeded' | 'retried' | 'failed' | 'cancelled';
  /** The handler's return value, when it succeeded. */
  result?: unknown;
  /** The error (or reason) stored, otherwise. */
  error?: string;
}

export interface RunTasksOptions {
  /**
   * Also run the tasks due by then: scheduled ones, delayed pushes and retries (a
   * retry's back-off is then skipped over as often as `now` allows). @default only ready tasks
   */
  now?: Date;
  /** Give up (TimeoutError) after this long. @default 30_000 */
  timeoutMs?: number;
}

class TestingStatements extends SqlFiles {
  async active(q: PgTq, names: readonly string[]): Promise<number> {
    const [row] = await this.run<{ n: number }>(q.pool, 'task_ready_count', [q.name, names]);
    return row?.n ?? 0;
  }

  async newestId(q: PgTq): Promise<string> {
    const [row] = await this.run<{ id: string }>(q.pool, 'task_newest_id', []);
    return row?.id ?? '0';
  }

  since(q: PgTq, id: string): Promise<TaskRow[]> {
    return this.run<TaskRow>(q.pool, 'task_list_since', [id]);
  }
}

const statements = new Map<string, TestingStatements>();
function sql(q: PgTq): TestingStatements {
  let s = statements.get(q.schema);
  if (!s) {
    s = new TestingStatements(q.schema, { preparedStatements: false });
    statements.set(q.schema, s);
  }
  return s;
}

/**
 * Runs the ready tasks of `q`'s queue in this process, one at a time, with `q`'s
 * handlers and a real worker (the same claims, retries and outcomes), until none of
 * their names is ready: tasks those tasks push run too. Returns each attempt's outcome,
 * in the order they ended. With `now`, tasks due by then run as well.
 */
export async function runTasks(q: PgTq, options: RunTasksOptions = {}): Promise<TaskRun[]> {
  const names = [...q.handlers.keys()];
  const runs: TaskRun[] = [];
  const worker = q.worker({ concurrency: 1 });
  const results = new Map<string, { result?: unknown; error?: string }>();
  const key = (task: { id: string; attempt: number }) => `${task.id}/${task.attempt}`;
  worker.on('task:success', (task, result) => results.set(key(task), { result }));
  worker.on('task:retry', (task, error) => results.set(key(task), { error }));
  worker.on('task:failure', (task, error) => results.set(key(task), { error }));
  worker.on('task:cancel', (task, reason) => results.set(key(task), { error: reason }));
  worker.on('task:end', (task, end) => {
    runs.push({
      id: task.id,
      name: task.name,
      args: task.args,
      attempt: task.attempt,
      outcome: end.outcome,
      ...results.get(key(task)),
    });
  });
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  await worker.start();
  // Returns once the worker stopped: by then it has reported every attempt it ran.
  try {
    for (;;) {
      if (options.now) await promoteDue(q, options.now);
      if ((await sql(q).active(q, names)) === 0) {
        // An attempt that ended just now may have been stored as a retry after the promotion.
        if (!options.now || (await promoteDue(q, options.now)) === 0) return runs;
        continue;
      }
      if (Date.now() > deadline) {
        throw new TimeoutError(
          `runTasks: tasks of queue "${q.name}" still ready after ${options.timeoutMs ?? 30_000} ms`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    await worker.stop();
  }
}

/** Makes the tasks due by `now` ready; returns how many. */
async function promoteDue(q: PgTq, now: Date): Promise<number> {
  return inBatches(1_000, () => q.statements.promoteDue(q.pool, 1_000, now));
}

/** The tasks `block` pushed, on any queue of `q`'s schema, in push order, with the block's value. */
export async function pushedBy<T>(q: PgTq, block: () => Promise<T>): Promise<{ tasks: TaskRow[]; value: T }> {
  const before = await sql(q).newestId(q);
  const value = await block();
  return { tasks: await sql(q).since(q, before), value };
}

import { isTaskId, TASK_STATES, type TaskRow, type TaskState } from '../../index.js';
import { type Command, parseCommand, table, UsageError, withQueue } from '../common.js';

export const tasksCommand: Command = {
  summary: "list a queue's tasks, pending or finished, newest first",
  usage: `pgtq tasks [--queue <name>] [--state <state>[,<state>]] [--name <task>] [--key <key>] [--group <group>] [--limit <n>] [--before <id>]

  --state   ${TASK_STATES.join(', ')}
  --limit   at most this many (default 50)
  --before  only tasks with a smaller id: pass the last id shown to page on`,
  async run({ argv, out }) {
    const { values } = parseCommand(argv, {
      state: { type: 'string', short: 's' },
      name: { type: 'string', short: 'n' },
      key: { type: 'string' },
      group: { type: 'string' },
      limit: { type: 'string', short: 'l' },
      before: { type: 'string' },
    });
    const state = values.state?.split(',').map((s) => s.trim());
    for (const s of state ?? []) {
      if (!(TASK_STATES as readonly string[]).includes(s)) {
        throw new UsageError(`--state: "${s}" is not one of ${TASK_STATES.join(', ')}`);
      }
    }
    const limit = Number(values.limit ?? 50);
    if (!/^\d+$/.test(values.limit ?? '50') || limit < 1 || limit > 10_000) {
      throw new UsageError(`--limit must be an integer from 1 to 10000, got "${values.limit}"`);
    }
    if (values.before !== undefined && !isTaskId(values.before)) {
      throw new UsageError(`--before: "${values.before}" is not a task id`);
    }
    const tasks = await withQueue(values, (q) =>
      q.listTasks({
        limit,
        ...(state ? { state: state as TaskState[] } : {}),
        ...(values.name ? { name: values.name } : {}),
        ...(values.key ? { key: values.key } : {}),
        ...(values.group ? { group: values.group } : {}),
        ...(values.before ? { beforeId: values.before } : {}),
      }),
    );
    out.write(values.json ? `${JSON.stringify(tasks)}\n` : table(tasks.map(summary)));
    return 0;
  },
};

/** One line per task: what fits on a terminal. */
function summary(task: TaskRow) {
  return {
    id: task.id,
    name: task.name,
    state: task.state,
    attempts: `${task.attempts}/${task.max_attempts}`,
    run_at: task.run_at,
    finished_at: task.finished_at,
    args: truncate(JSON.stringify(task.args), 40),
    error: truncate(task.error?.split('\n', 1)[0] ?? '', 60),
  };
}

function truncate(text: string, length: number): string {
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

import { type PgTq, ValidationError } from '../../index.js';
import { type Command, openQueue, parseCommand, UsageError } from '../common.js';

export const pushCommand: Command = {
  summary: 'push a task by name with JSON arguments (for scripts and cron)',
  usage: `pgtq push <task-name> [<json-args>] [--queue <name>] [--delay-ms <ms>] [--priority <n>] [--key <key>] [--max-attempts <n>]

  <json-args>  a JSON array of the handler's arguments (default [])
Prints the task id (or, with --json, { id, queue, name, inserted }). Warns on stderr
when the queue has live workers and none of them has a handler of that name.`,
  async run({ argv, out, err }) {
    const { values, positionals } = parseCommand(
      argv,
      {
        'delay-ms': { type: 'string' },
        priority: { type: 'string' },
        key: { type: 'string' },
        'max-attempts': { type: 'string' },
      },
      { positionals: true },
    );
    const [name, json = '[]', ...extra] = positionals;
    if (!name || extra.length > 0) throw new UsageError('expected: pgtq push <task-name> [<json-args>]');
    let args: unknown;
    try {
      args = JSON.parse(json);
    } catch {
      throw new UsageError(`<json-args> is not JSON: ${json}`);
    }
    if (!Array.isArray(args)) throw new UsageError('<json-args> must be a JSON array, e.g. [2, 3]');
    const number = (option: string, value: string | undefined) => {
      if (value === undefined) return undefined;
      const n = Number(value);
      if (!Number.isInteger(n)) throw new UsageError(`--${option} must be an integer, got "${value}"`);
      return n;
    };
    const options = {
      delayMs: number('delay-ms', values['delay-ms']),
      priority: number('priority', values.priority),
      key: values.key,
      maxAttempts: number('max-attempts', values['max-attempts']),
    };
    const q = openQueue(values);
    try {
      // Options are checked before anything is sent: out-of-range ones are bad usage too.
      const ref = await q.push(name, args, options).catch((error: unknown) => {
        throw error instanceof ValidationError ? new UsageError(error.message) : error;
      });
      out.write(
        values.json
          ? `${JSON.stringify(ref)}\n`
          : `${ref.id}${ref.inserted ? '' : ' (already pending with this key)'}\n`,
      );
      const unhandled = await unhandledBy(q, name);
      if (unhandled) err.write(`pgtq: warning: ${unhandled}\n`);
      return 0;
    } finally {
      await q.close();
    }
  },
};

/**
 * Why no live worker of the queue would run a task named `name`, or undefined when one
 * would, or when no worker is up (then nothing can be told: it may start later).
 */
async function unhandledBy(q: PgTq, name: string): Promise<string | undefined> {
  const workers = (await q.processes()).filter((p) => p.kind === 'worker' && p.queue === q.name);
  const handles = (p: (typeof workers)[number]) => {
    const handlers = p.details.handlers;
    return !Array.isArray(handlers) || handlers.includes(name);
  };
  if (workers.length === 0 || workers.some(handles)) return undefined;
  return `none of the ${workers.length} live worker(s) of queue "${q.name}" has a handler named "${name}"; the task waits until one does (see the tasks_without_handler view)`;
}

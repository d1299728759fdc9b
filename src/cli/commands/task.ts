import { type Command, parseCommand, taskIds, UsageError, withQueue } from '../common.js';

const USAGE = 'pgtq task <id> [--json]';

export const taskCommand: Command = {
  summary: 'show one task, pending or finished, with its result or error',
  usage: `${USAGE}

Exits 1 when there is no task with that id.`,
  async run({ argv, out }) {
    const { values, positionals } = parseCommand(argv, {}, { positionals: true });
    if (positionals.length > 1) throw new UsageError(`one id at a time: ${USAGE}`);
    const [id] = taskIds(positionals, USAGE);
    const task = await withQueue(values, (q) => q.getTask(id as string));
    if (values.json) {
      out.write(`${JSON.stringify(task)}\n`);
      return 0;
    }
    const { error, ...rest } = task;
    const width = Math.max(...Object.keys(rest).map((key) => key.length));
    for (const [key, value] of Object.entries(rest)) {
      const text =
        value instanceof Date
          ? value.toISOString()
          : typeof value === 'string'
            ? value
            : value === null
              ? ''
              : JSON.stringify(value);
      out.write(`${key.padEnd(width)}  ${text}\n`);
    }
    if (error) out.write(`error:\n${error}\n`);
    return 0;
  },
};

import { type Command, parseCommand, taskIds, withQueue } from '../common.js';

const USAGE = 'pgtq cancel <id>... [--reason <text>]';

export const cancelCommand: Command = {
  summary: 'cancel tasks: pending ones at once, running ones through their signal',
  usage: `${USAGE}

A pending task is cancelled at once. A running task is asked to stop: its handler's
signal aborts, wherever its worker runs, and the worker stores it as cancelled.
Exits 1 if a task was not pending or running.`,
  async run({ argv, out }) {
    const { values, positionals } = parseCommand(argv, { reason: { type: 'string' } }, { positionals: true });
    const ids = taskIds(positionals, USAGE);
    const result = await withQueue(values, (q) => q.cancel(ids, values.reason));
    const found = new Set([...result.cancelled, ...result.cancelRequested]);
    const skipped = ids.filter((id) => !found.has(id));
    if (values.json) {
      out.write(`${JSON.stringify({ ...result, skipped })}\n`);
    } else {
      for (const id of result.cancelled) out.write(`${id} cancelled\n`);
      for (const id of result.cancelRequested) out.write(`${id} running: asked to stop\n`);
      for (const id of skipped) out.write(`${id} not cancelled: not pending or running\n`);
    }
    return skipped.length > 0 ? 1 : 0;
  },
};

import { type Command, parseCommand, progress, UsageError, withQueue } from '../common.js';

export const flushCommand: Command = {
  summary: "delete a queue's pending tasks (running tasks and history stay)",
  usage: `pgtq flush --queue <name> --yes

Deletes every scheduled and ready task of the queue, in batches. --yes is required.`,
  async run({ argv, out, err }) {
    const { values } = parseCommand(argv, { yes: { type: 'boolean', short: 'y' } });
    if (!values.queue) throw new UsageError('name the queue to flush: --queue <name>');
    if (!values.yes) {
      throw new UsageError(`flush deletes every pending task of queue "${values.queue}"; add --yes to do it`);
    }
    const shown = progress(err, 'deleted', values.json);
    const deleted = await withQueue(values, (q) => q.flush({ onProgress: shown.update }));
    shown.end();
    out.write(
      values.json
        ? `${JSON.stringify({ queue: values.queue, deleted })}\n`
        : `deleted ${deleted} pending task(s) of queue ${values.queue}\n`,
    );
    return 0;
  },
};

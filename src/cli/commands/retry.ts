import { type Command, parseCommand, progress, taskIds, UsageError, withQueue } from '../common.js';

const USAGE = 'pgtq retry <id>... | pgtq retry --failed [--name <task>] [--queue <name>]';

export const retryCommand: Command = {
  summary: 'run failed or cancelled tasks again, with fresh attempts',
  usage: `${USAGE}

  <id>...   these tasks (failed or cancelled)
  --failed  every failed task of the queue (of one task name with --name)
Prints the ids retried (or, with --failed, how many).`,
  async run({ argv, out, err }) {
    const { values, positionals } = parseCommand(
      argv,
      { failed: { type: 'boolean' }, name: { type: 'string', short: 'n' } },
      { positionals: true },
    );
    if (values.failed) {
      if (positionals.length > 0) throw new UsageError(`give ids or --failed, not both: ${USAGE}`);
      const shown = progress(err, 'retried', values.json);
      const retried = await withQueue(values, (q) =>
        q.retryFailed({ ...(values.name ? { name: values.name } : {}), onProgress: shown.update }),
      );
      shown.end();
      out.write(values.json ? `${JSON.stringify({ retried })}\n` : `retried ${retried} failed task(s)\n`);
      return 0;
    }
    if (values.name) throw new UsageError('--name goes with --failed');
    const ids = taskIds(positionals, USAGE);
    const retried = await withQueue(values, (q) => q.retry(ids));
    const skipped = ids.filter((id) => !retried.includes(id));
    if (values.json) {
      out.write(`${JSON.stringify({ retried, skipped })}\n`);
    } else {
      for (const id of retried) out.write(`${id} retried\n`);
      for (const id of skipped)
        out.write(`${id} not retried: not a failed or cancelled task (or its key is pending)\n`);
    }
    return skipped.length > 0 ? 1 : 0;
  },
};

import { type Command, openQueue, parseCommand, positiveInt, table } from '../common.js';

export const statsCommand: Command = {
  summary: 'queues × states: counts and the age of the oldest waiting task',
  usage: `pgtq stats [--queue <name>] [--watch [--interval-ms <ms>]] [--json]

Every queue of the schema, or only --queue.`,
  async run({ argv, out }) {
    const { values } = parseCommand(argv, {
      watch: { type: 'boolean', short: 'w' },
      'interval-ms': { type: 'string' },
    });
    const interval = positiveInt('interval-ms', values['interval-ms'], 1000);
    const q = openQueue(values);
    // Every queue of the schema unless --queue names one.
    const read = async () =>
      (await q.summary({ allQueues: values.queue === undefined })).map(
        ({ queue, state, count, oldest_age }) => ({
          queue,
          state,
          count,
          oldest_age,
        }),
      );
    try {
      if (!values.watch) {
        const rows = await read();
        out.write(values.json ? `${JSON.stringify(rows)}\n` : table(rows));
        return 0;
      }
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      while (!stop.signal.aborted) {
        const rows = await read();
        // Redraw in place on a terminal; one JSON line per refresh otherwise.
        out.write(
          values.json || !out.isTTY
            ? `${JSON.stringify(rows)}\n`
            : `\x1b[H\x1b[2J${new Date().toISOString()}\n${table(rows)}`,
        );
        await new Promise((resolve) => setTimeout(resolve, interval));
      }
      return 0;
    } finally {
      await q.close();
    }
  },
};

import { quoteIdent } from '../../db/queryable.js';
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
    const read = async () =>
      (
        await q.pool.query(
          `SELECT queue, state, count::int AS count, date_trunc('second', oldest_age)::text AS oldest_age
           FROM ${quoteIdent(q.schema)}.queue_summary
           WHERE $1::text IS NULL OR queue = $1
           ORDER BY queue, state`,
          [values.queue ?? null],
        )
      ).rows;
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

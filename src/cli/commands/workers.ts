import { quoteIdent } from '../../db/queryable.js';
import { type Command, parseCommand, table, withQueue } from '../common.js';

export const workersCommand: Command = {
  summary: 'the workers and schedulers alive now, from their heartbeats',
  usage: 'pgtq workers [--json]',
  async run({ argv, out }) {
    const { values } = parseCommand(argv);
    const rows = await withQueue(
      values,
      async (q) =>
        (
          await q.pool.query(
            `SELECT kind, queue, id, hostname, pid, running::int AS running,
                    date_trunc('second', started_at) AS started_at,
                    round(extract(epoch FROM silent_for) * 1000)::int AS silent_ms
             FROM ${quoteIdent(q.schema)}.live_processes ORDER BY kind, queue, started_at`,
          )
        ).rows,
    );
    out.write(values.json ? `${JSON.stringify(rows)}\n` : table(rows));
    return 0;
  },
};

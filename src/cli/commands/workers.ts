import { type Command, parseCommand, table, withQueue } from '../common.js';

export const workersCommand: Command = {
  summary: 'the workers and schedulers alive now, from their heartbeats',
  usage: 'pgtq workers [--json]',
  async run({ argv, out }) {
    const { values } = parseCommand(argv);
    const processes = await withQueue(values, (q) => q.processes());
    const rows = processes.map(({ kind, queue, id, hostname, pid, running, started_at, silent_ms }) => ({
      kind,
      queue,
      id,
      hostname,
      pid,
      running,
      started_at: new Date(Math.floor(started_at.getTime() / 1000) * 1000),
      silent_ms,
    }));
    out.write(values.json ? `${JSON.stringify(rows)}\n` : table(rows));
    return 0;
  },
};

import { type Command, parseCommand, table, withQueue } from '../common.js';

export const schedulesCommand: Command = {
  summary: 'the cron schedules, with when each fires next',
  usage: `pgtq schedules [--queue <name>] [--json]

Every queue's schedules, or only --queue's, by name. A schedule no scheduler has seen
yet (new or changed) has no next fire until one runs.`,
  async run({ argv, out }) {
    const { values } = parseCommand(argv);
    const schedules = await withQueue(values, (q) => q.schedules({ allQueues: values.queue === undefined }));
    if (values.json) {
      out.write(`${JSON.stringify(schedules)}\n`);
      return 0;
    }
    const now = Date.now();
    const rows = schedules.map((s) => ({
      name: s.name,
      queue: s.queue,
      cron: s.cron,
      tz: s.tz,
      task: s.taskName,
      next_fire_at: s.nextFireAt,
      next_in: s.nextFireAt
        ? `${Math.max(0, Math.round((s.nextFireAt.getTime() - now) / 1000))} s`
        : s.error
          ? ''
          : 'when a scheduler runs',
      last_fired_at: s.lastFiredAt,
      error: s.error,
    }));
    out.write(table(rows));
    return 0;
  },
};

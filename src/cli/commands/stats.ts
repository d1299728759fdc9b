import type { FlowStatus } from '../../index.js';
import { type Command, openQueue, parseCommand, positiveInt, table } from '../common.js';

/** At most this many held groups are listed; the rest are counted. */
const HELD_SHOWN = 20;

export const statsCommand: Command = {
  summary: 'queues × states: counts and the age of the oldest waiting task',
  usage: `pgtq stats [--queue <name>] [--watch [--interval-ms <ms>]] [--json]

Every queue of the schema, or only --queue. Below the counts: paused queues and
task names, and groups held back by a flow-control limit (see the flow_status view).`,
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
    const flow = async () => flowTables(await q.flow({ allQueues: values.queue === undefined }));
    try {
      if (!values.watch) {
        const rows = await read();
        out.write(values.json ? `${JSON.stringify(rows)}\n` : table(rows) + (await flow()));
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
            : `\x1b[H\x1b[2J${new Date().toISOString()}\n${table(rows)}${await flow()}`,
        );
        await new Promise((resolve) => setTimeout(resolve, interval));
      }
      return 0;
    } finally {
      await q.close();
    }
  },
};

/** Paused queues and names, and the groups a limit holds back now: nothing when there are none. */
function flowTables({ paused, groups }: FlowStatus): string {
  const held = groups.filter((group) => group.held_by !== null);
  let text = '';
  if (paused.length > 0) text += `\npaused\n${table(paused.map((p) => ({ ...p })))}`;
  if (held.length > 0) {
    const rows = held.slice(0, HELD_SHOWN).map((g) => ({
      queue: g.queue,
      name: g.name,
      group: g.group_key,
      ready: g.ready,
      running: g.running,
      group_concurrency: g.group_concurrency,
      rate: g.rate_limit === null ? null : `${g.recent_starts}/${g.rate_limit} per ${g.rate_period_ms} ms`,
      held_by: g.held_by,
    }));
    const more = held.length > HELD_SHOWN ? `… and ${held.length - HELD_SHOWN} more groups\n` : '';
    text += `\nheld back by flow control\n${table(rows)}${more}`;
  }
  return text;
}

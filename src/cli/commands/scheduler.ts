import {
  type Command,
  closeQueues,
  lineLogger,
  openQueue,
  parseCommand,
  serveUntilSignal,
} from '../common.js';

export const schedulerCommand: Command = {
  summary: 'promote due tasks, fire cron schedules, rescue lost tasks, keep history',
  usage: `pgtq scheduler [--schema <name>] [--database-url <url>]

Serves every queue of the schema. Running more than one is harmless. Stops on SIGTERM or SIGINT.`,
  async run({ argv, err }) {
    const { values } = parseCommand(argv, {}, { positionals: true });
    const log = lineLogger(err, { verbose: values.verbose, json: values.json });
    const q = openQueue(values, log);
    const scheduler = q.scheduler();
    scheduler.on('promoted', (count) => log.debug('promoted', { count }));
    scheduler.on('rescued', (result) => log.warn('rescued tasks of lost workers', result));
    scheduler.on('compacted', ({ live_rows, bytes_before, bytes_after, vacuumed }) =>
      log.info('compacted tasks', {
        rows: live_rows,
        bytesBefore: bytes_before,
        bytesAfter: bytes_after,
        vacuumed,
      }),
    );
    scheduler.on('scheduler:error', (error) => log.error('scheduler error', { error: error.message }));
    try {
      await serveUntilSignal([scheduler], {
        log,
        graceMs: 0,
        onStarted: () => log.info('scheduler started', { schema: q.schema, pid: process.pid }),
      });
      log.info('scheduler stopped');
      return 0;
    } finally {
      await closeQueues([q]);
    }
  },
};

import type { PgTq } from '../../index.js';
import { type Command, parseCommand, UsageError, withQueue } from '../common.js';

/** `pgtq pause` and `pgtq resume`: the same flags, the opposite action. */
function pauseOrResume(action: 'pause' | 'resume'): Command {
  const done = action === 'pause' ? 'paused' : 'resumed';
  return {
    summary:
      action === 'pause'
        ? 'stop starting tasks of a queue, or of one task name (running tasks finish; pushes are stored)'
        : 'start tasks of a paused queue, or task name, again',
    usage: `pgtq ${action} --queue <name> [--name <task>]`,
    async run({ argv, out }) {
      const { values } = parseCommand(argv, { name: { type: 'string', short: 'n' } });
      if (!values.queue) throw new UsageError(`name the queue to ${action}: --queue <name>`);
      const changed = await withQueue(values, (q: PgTq) => q[action](values.name));
      const what = values.name ? `task ${values.name} of queue ${values.queue}` : `queue ${values.queue}`;
      out.write(
        values.json
          ? `${JSON.stringify({ queue: values.queue, name: values.name ?? null, changed })}\n`
          : `${changed ? done : `already ${action === 'pause' ? 'paused' : 'running'}`}: ${what}\n`,
      );
      return 0;
    },
  };
}

export const pauseCommand = pauseOrResume('pause');
export const resumeCommand = pauseOrResume('resume');

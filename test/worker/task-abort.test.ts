import { describe, expect, it } from 'vitest';
import { TaskAbort } from '../../src/worker/task-abort.js';

describe('TaskAbort', () => {
  it('rejects the race with the first reason and leaves the work running', async () => {
    const abort = new TaskAbort();
    let finish: (value: string) => void = () => {};
    const work = new Promise<string>((resolve) => {
      finish = resolve;
    });
    const raced = abort.race(work);
    abort.abort(new Error('timed out'));
    abort.abort(new Error('cancelled'));
    await expect(raced).rejects.toThrow('timed out');
    finish('done');
    await expect(work).resolves.toBe('done');
  });

  it('gives a signal read after the abort that is aborted already, with the reason', () => {
    const abort = new TaskAbort();
    const reason = new Error('lease lost');
    abort.abort(reason);
    expect(abort.signal.aborted).toBe(true);
    expect(abort.signal.reason).toBe(reason);
  });

  it('aborts a signal read before the abort, and settles the race with the work when never aborted', async () => {
    const abort = new TaskAbort();
    const signal = abort.signal;
    await expect(abort.race(Promise.resolve(42))).resolves.toBe(42);
    abort.abort('shutdown');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('shutdown');
    await expect(abort.race(Promise.resolve(1))).rejects.toBe('shutdown');
  });
});

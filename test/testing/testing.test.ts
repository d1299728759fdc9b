import { expect, it } from 'vitest';
import { Fail, TimeoutError } from '../../src/index.js';
import { pushedBy, runTasks } from '../../src/testing/index.js';
import { useTestSchema } from '../helpers/queue.js';

// pgtq/testing: a queue's tasks run in the test's own process, against a real PostgreSQL.
const db = await useTestSchema('pgtq_testing');

it('runs the ready tasks to completion, and those they push, and returns each outcome', async () => {
  const q = db.queue('signup');
  const sent: string[] = [];
  const sendWelcome = q.handler(async function send_welcome(email: string) {
    if (email.endsWith('.invalid')) throw new Fail(`no such domain: ${email}`);
    sent.push(email);
    return { sent: email };
  });
  const onSignup = q.handler(async function on_signup(email: string) {
    await sendWelcome.push(email);
  });
  await onSignup.push('ada@example.com');
  await sendWelcome.push('bob@nowhere.invalid');
  const later = await sendWelcome.with({ delayMs: 3_600_000 }).push('later@example.com');

  const runs = await runTasks(q);
  expect(runs.map(({ name, args, outcome }) => [name, args[0], outcome])).toEqual([
    ['on_signup', 'ada@example.com', 'succeeded'],
    ['send_welcome', 'bob@nowhere.invalid', 'failed'],
    ['send_welcome', 'ada@example.com', 'succeeded'],
  ]);
  expect(runs[1]?.error).toMatch(/no such domain: bob@nowhere.invalid/);
  expect(runs[2]?.result).toEqual({ sent: 'ada@example.com' });
  expect(sent).toEqual(['ada@example.com']);
  expect((await q.getTask(later.id)).state).toBe('scheduled');

  // with a "now" an hour and more ahead, the delayed task is due
  const afterAnHour = await runTasks(q, { now: new Date(Date.now() + 3_601_000) });
  expect(afterAnHour.map(({ id, outcome }) => [id, outcome])).toEqual([[later.id, 'succeeded']]);
});

it('with a "now" far ahead, runs a retried task again until it succeeds or fails for good', async () => {
  const q = db.queue('flaky');
  let calls = 0;
  const flaky = q.handler({ maxAttempts: 3 }, async function flaky() {
    calls++;
    if (calls < 3) throw new Error(`attempt ${calls} failed`);
    return 'third time';
  });
  await flaky.push();
  expect((await runTasks(q)).map((run) => run.outcome)).toEqual(['retried']);
  const runs = await runTasks(q, { now: new Date(Date.now() + 86_400_000) });
  expect(runs.map(({ attempt, outcome }) => [attempt, outcome])).toEqual([
    [2, 'retried'],
    [3, 'succeeded'],
  ]);
});

it('gives up with a TimeoutError when tasks stay ready', async () => {
  const q = db.queue('stuck');
  q.handler(async function stuck() {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  });
  await q.push('stuck', []);
  await expect(runTasks(q, { timeoutMs: 200 })).rejects.toThrow(TimeoutError);
});

it('pushedBy returns what a block pushed, on any queue, in push order, and the block value', async () => {
  const mail = db.queue('mail');
  const audit = db.queue('audit');
  await mail.push('before', []);
  const { tasks, value } = await pushedBy(mail, async () => {
    await mail.push('send', ['a@example.com']);
    await audit.push('record', [{ action: 'signup' }]);
    return 42;
  });
  expect(value).toBe(42);
  expect(tasks.map((t) => [t.queue, t.name, t.args])).toEqual([
    ['mail', 'send', ['a@example.com']],
    ['audit', 'record', [{ action: 'signup' }]],
  ]);
});

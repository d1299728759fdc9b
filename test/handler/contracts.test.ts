import { fileURLToPath } from 'node:url';
import { expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineTask, PgTq, type TaskRef, ValidationError } from '../../src/index.js';
// The producer imports the contracts only, never the handlers.
import { remind, sendWelcome } from '../cli/fixtures/contracts/contracts.js';
import { cli, described } from '../helpers/cli.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_contracts');
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };
const handlers = fileURLToPath(new URL('../cli/fixtures/contracts/handlers.ts', import.meta.url));

it('a producer pushes typed tasks from contracts alone, and a worker in another process runs them', async () => {
  const web = db.queue('contracts');
  const welcome = await web.task(sendWelcome).push('ada@example.com', { locale: 'en-GB' });
  const later = await web.task(remind).push('2030-01-01T09:00:00.000Z', 'water the plants');
  expectTypeOf(welcome).toEqualTypeOf<TaskRef<{ sent: string }>>();
  expectTypeOf(later).toEqualTypeOf<TaskRef<{ at: string; text: string }>>();
  expect(web.handlers.size).toBe(0); // a contract registers no handler on the producer's queue

  const worker = startNode([cli, 'worker', handlers], env, { clean: true, timeoutMs: 60_000 });
  try {
    expect(await welcome.result({ timeoutMs: 30_000 })).toEqual({ sent: 'ada@example.com (en-GB)' });
    expect(await later.result({ timeoutMs: 30_000 })).toEqual({
      at: '2030-01-01T09:00:00.000Z',
      text: 'water the plants',
    });
  } finally {
    worker.child.kill('SIGTERM');
  }
  const stopped = await worker.finished;
  expect(stopped.code, described(stopped)).toBe(0);
});

it("checks a push against the contract's schema, and stores nothing it refuses", async () => {
  const web = db.queue('contracts-refused');
  // @ts-expect-error the contract's schema takes an ISO date string, not a Date
  expect(() => web.task(remind).push(new Date(), 'x')).toThrow(ValidationError);
  await expect(Promise.resolve().then(() => web.task(remind).push('next tuesday', 'x'))).rejects.toThrow(
    /remind: args\[0\]/,
  );
  expect(await web.listTasks()).toEqual([]);
});

it('types both sides: the push takes what the contract says, the implementation must match it', () => {
  const q = db.queue('contracts-types');
  const resize = defineTask<[url: string, width: number], { bytes: number }>('resize');
  const pusher = q.task(resize);
  expectTypeOf(pusher.push).parameters.toEqualTypeOf<[url: string, width: number]>();
  // Compile-time checks only (never called: each would register or push).
  const refusedByTheCompiler = () => {
    // @ts-expect-error a width is a number
    void pusher.push('a.png', 'wide');
    // @ts-expect-error the contract's result is { bytes: number }
    q.handler(resize, async (_url, _width) => ({ size: 1 }));
    // @ts-expect-error the contract's second argument is a number
    q.handler(resize, async (_url: string, _width: string) => ({ bytes: 1 }));
    // @ts-expect-error the name is the contract's
    q.handler(resize, { name: 'x' }, async (_url, _width) => ({ bytes: 1 }));
  };
  expect(refusedByTheCompiler).toBeTypeOf('function');
  const implemented = q.handler(resize, { maxAttempts: 2 }, async (url, width) => ({
    bytes: url.length * width,
  }));
  expectTypeOf(implemented.push).parameters.toEqualTypeOf<[url: string, width: number]>();
  expect(implemented.taskName).toBe('resize');
  expect(implemented.options.maxAttempts).toBe(2);

  const when = defineTask('when', { args: z.tuple([z.iso.datetime().transform((t) => new Date(t))]) });
  expectTypeOf(q.task(when).push).parameters.toEqualTypeOf<[string]>();
  q.handler(when, async (at) => {
    expectTypeOf(at).toEqualTypeOf<Date>();
  });
});

it("types a push by name with the queue's contracts: PgTq<{ name: typeof contract }>", async () => {
  const q = new PgTq<{ send_welcome: typeof sendWelcome; remind: typeof remind }>('contracts-by-name', {
    connectionString: db.url,
    schema: db.schema,
  });
  try {
    const ref = await q.push('send_welcome', ['ada@example.com', { locale: 'fr' }]);
    expectTypeOf(ref).toEqualTypeOf<TaskRef<{ sent: string }>>();
    expect((await q.getTask(ref.id)).args).toEqual(['ada@example.com', { locale: 'fr' }]);
    expectTypeOf(q.push<'remind'>)
      .parameter(1)
      .toEqualTypeOf<[string, string] | undefined>();
    const refusedByTheCompiler = () => {
      // @ts-expect-error no task of that name in the queue's contracts
      void q.push('send_welcom', ['ada@example.com', { locale: 'fr' }]);
      // @ts-expect-error the contract's second argument is an options object
      void q.push('send_welcome', ['ada@example.com', 'fr']);
    };
    expect(refusedByTheCompiler).toBeTypeOf('function');
  } finally {
    await q.close();
  }
});

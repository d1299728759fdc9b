import { type } from 'arktype';
import * as v from 'valibot';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { z as z3 } from 'zod/v3';
import { ConfigError, ValidationError } from '../../src/index.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_args_schema');

/**
 * A Standard Schema written by hand, as valibot or arktype would give one: pgtq
 * must not care which library made a schema, only that it has `~standard`.
 * It takes one ISO date string and hands the function a Date.
 */
const isoDate = {
  '~standard': {
    version: 1,
    vendor: 'by-hand',
    validate: (value: unknown) =>
      Array.isArray(value) && value.length === 1 && typeof value[0] === 'string'
        ? { value: [new Date(value[0])] as [Date] }
        : { issues: [{ message: 'expected one ISO date', path: [{ key: 0 }] }] },
    types: undefined as { input: [string]; output: [Date] } | undefined,
  },
} as const;

async function storedArgs(name: string): Promise<unknown[]> {
  const rows = await db.rows<{ args: unknown }>(
    'SELECT args FROM :schema.tasks WHERE name = $1 ORDER BY id',
    [name],
  );
  return rows.map((row) => row.args);
}

describe('a handler’s args schema is any Standard Schema', () => {
  it('a zod 3 schema (the zod/v3 API) checks and types the arguments', async () => {
    const q = db.queue('zod3');
    const sum = q.handler(
      { name: 'sum3', args: z3.tuple([z3.number(), z3.number()]) },
      async (a, b) => a + b,
    );
    expectTypeOf(sum.push).parameters.toEqualTypeOf<[number, number]>();
    await expect(sum(2, 3)).resolves.toBe(5);
    await sum.push(2, 3);
    // @ts-expect-error: a string where the schema wants a number
    await expect(sum.push('2', 3)).rejects.toThrow(/sum3: args\[0\]: Expected number, received string/);
    expect(await storedArgs('sum3')).toEqual([[2, 3]]);
  });

  it('a zod 4 schema infers the function’s arguments from its output and push’s from its input', async () => {
    const q = db.queue('zod4');
    const length = q.handler(
      { name: 'length4', args: z.tuple([z.string().transform((s) => s.length)]) },
      async (n) => n * 2,
    );
    expectTypeOf(length.push).parameters.toEqualTypeOf<[string]>();
    await expect(length('abc')).resolves.toBe(6);
  });

  it('a valibot schema checks, transforms and types the arguments', async () => {
    const q = db.queue('valibot');
    const greet = q.handler(
      {
        name: 'greet_v',
        args: v.tuple([
          v.pipe(
            v.string(),
            v.email(),
            v.transform((email) => email.split('@')[0] ?? ''),
          ),
        ]),
      },
      async (name) => `hello ${name}`,
    );
    expectTypeOf(greet.push).parameters.toEqualTypeOf<[string]>();
    await expect(greet('ada@example.com')).resolves.toBe('hello ada');
    await greet.push('ada@example.com');
    await expect(greet.push('not an email')).rejects.toThrow(/greet_v: args\[0\]: Invalid email/);
    expect(await storedArgs('greet_v')).toEqual([['ada@example.com']]);
  });

  it('an arktype schema checks and types the arguments', async () => {
    const q = db.queue('arktype');
    const area = q.handler(
      { name: 'area_ark', args: type(['number > 0', 'number > 0']) },
      async (w, h) => w * h,
    );
    expectTypeOf(area.push).parameters.toEqualTypeOf<[number, number]>();
    await expect(area(2, 3)).resolves.toBe(6);
    await area.push(2, 3);
    await expect(area.push(-1, 3)).rejects.toThrow(/area_ark: args\[0\]: .*positive|more than 0/);
    expect(await storedArgs('area_ark')).toEqual([[2, 3]]);
  });

  it('a schema from no library at all: push stores the input, the function gets the output', async () => {
    const q = db.queue('by_hand');
    let received: unknown;
    const remind = q.handler({ name: 'remind', args: isoDate }, async (at) => {
      expectTypeOf(at).toEqualTypeOf<Date>();
      received = at;
      return at.getUTCFullYear();
    });
    expectTypeOf(remind.push).parameters.toEqualTypeOf<[string]>();
    await expect(remind('2030-01-02T00:00:00Z')).resolves.toBe(2030);
    expect(received).toBeInstanceOf(Date);
    await remind.push('2030-01-02T00:00:00Z');
    expect(await storedArgs('remind')).toEqual([['2030-01-02T00:00:00Z']]);
    // a path segment given as { key } reads like a plain one
    await expect(q.push('remind', [1])).rejects.toThrow(/remind: args\[0\]: expected one ISO date/);
  });

  it('a schema that validates asynchronously is refused with a clear error, and stores nothing', async () => {
    const q = db.queue('async');
    const later = q.handler(
      { name: 'later', args: z.tuple([z.string().refine(async (s) => s.length > 0)]) },
      async (s) => s,
    );
    const error = await later.push('x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toBe(
      'later: the args schema validates asynchronously; pgtq needs a synchronous one (no async refinements or transforms)',
    );
    expect(await storedArgs('later')).toEqual([]);
  });

  it('anything else is a configuration error', () => {
    const q = db.queue('not_a_schema');
    const notASchema = { parse: (value: unknown) => value };
    // @ts-expect-error: not a schema on purpose
    expect(() => q.handler({ name: 'nope', args: notASchema }, async () => {})).toThrow(ConfigError);
    // @ts-expect-error: not a schema on purpose
    expect(() => q.handler({ name: 'nope', args: notASchema }, async () => {})).toThrow(
      /args: expected a schema implementing Standard Schema/,
    );
  });
});

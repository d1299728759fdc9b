import { afterAll, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import type { JsonHonest } from '../../src/handler/json-types.js';
import { PgTq } from '../../src/index.js';

// JSON honesty: what a handler takes and returns is what arrives through jsonb. These
// checks are the compiler's (npm run check); the calls below only register handlers.
const q = new PgTq('json-types', { connectionString: 'postgres://localhost/never-connected' });
afterAll(() => q.close());

it('refuses, at compile time, parameters and results that JSON would change', () => {
  // @ts-expect-error a Date arrives as a string
  q.handler(async function takes_date(_when: Date) {});
  // @ts-expect-error nested just as well
  q.handler(async function takes_order(_order: { id: number; placedAt: Date }) {});
  // @ts-expect-error a Map is stored as {}
  q.handler(async function returns_map() {
    return new Map<string, number>();
  });
  // @ts-expect-error a bigint cannot be stored at all
  q.handler({ name: 'returns_bigint' }, async () => 1n);
  // @ts-expect-error an instance with methods loses them
  q.handler(async function takes_url(_url: URL) {});

  const ok = q.handler(async function takes_json(order: {
    id: number;
    items: { sku: string }[];
    note?: string;
  }) {
    return { count: order.items.length, at: new Date().toISOString() };
  });
  expectTypeOf(ok.push).parameters.toEqualTypeOf<[{ id: number; items: { sku: string }[]; note?: string }]>();
  expect(q.handlers.size).toBe(6);
});

it('says what is wrong in the error itself', () => {
  expectTypeOf<JsonHonest<[Date], void>>().toEqualTypeOf<{
    'pgtq: handler arguments travel as JSON': 'a Date does not survive it: take JSON values (a Date as an ISO string), or give the handler an args schema that transforms them';
  }>();
  expectTypeOf<JsonHonest<[string], Promise<Set<string>>>>().toEqualTypeOf<{
    'pgtq: a handler result is stored as JSON': 'a Set does not survive it: return JSON values (a Date as an ISO string)';
  }>();
  expectTypeOf<JsonHonest<[string, { n: number }[]], { ok: boolean } | null>>().toEqualTypeOf<unknown>();
  expectTypeOf<JsonHonest<unknown[], unknown>>().toEqualTypeOf<unknown>();
});

it('takes a Date through a schema that transforms: push takes its input, the function its output', () => {
  const remind = q.handler(
    { name: 'remind', args: z.tuple([z.iso.datetime().transform((text) => new Date(text))]) },
    async (when: Date) => when.toISOString(),
  );
  expectTypeOf(remind.push).parameters.toEqualTypeOf<[string]>();
  expectTypeOf(remind.parseArgs).returns.toEqualTypeOf<[Date]>();
});

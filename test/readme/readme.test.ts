import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, expect, it, vi } from 'vitest';
import { databaseUrl, dropSchema, uniqueSchemaName } from '../helpers/database.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The first ```ts block after `heading`. */
function codeAfter(heading: string): string {
  const section = readme.slice(readme.indexOf(heading));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  if (!match?.[1]) throw new Error(`no ts block after ${heading}`);
  return match[1];
}

const schema = uniqueSchemaName('pgtq_readme');
afterAll(() => dropSchema(schema));

it("the README's example runs as written", async () => {
  const file = new URL('./example.generated.ts', import.meta.url);
  writeFileSync(file, codeAfter('## Example').replace("from 'pgtq'", "from '../../src/index.js'"));
  process.env.DATABASE_URL = databaseUrl();
  process.env.PGTQ_SCHEMA = schema;
  const log = vi.spyOn(console, 'log').mockImplementation(() => {});
  try {
    await import(file.href);
    expect(log.mock.calls).toEqual([[5], [5]]);
  } finally {
    log.mockRestore();
    delete process.env.PGTQ_SCHEMA;
  }
});

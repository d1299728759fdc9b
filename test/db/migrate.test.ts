import { readdirSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { PgTq } from '../../src/index.js';
import { databaseUrl, dropSchema, uniqueSchemaName } from '../helpers/database.js';
import { runScript } from '../helpers/processes.js';

const schema = uniqueSchemaName('pgtq_migrate');
afterAll(() => dropSchema(schema));

const migrationFiles = readdirSync(new URL('../../migrations/', import.meta.url)).filter((f) =>
  f.endsWith('.sql'),
);

it('four processes migrating one schema at the same moment all succeed, and apply each migration once', async () => {
  const script = `
    import { PgTq } from '${new URL('../../dist/index.js', import.meta.url).href}';
    const q = new PgTq('m', { connectionString: process.env.URL, schema: process.env.SCHEMA });
    const applied = await q.migrate();
    console.log(JSON.stringify(applied));
    await q.close();`;
  const processes = Array.from({ length: 4 }, () =>
    runScript(script, { URL: databaseUrl(), SCHEMA: schema }),
  );
  const results = await Promise.all(processes.map((p) => p.finished));
  expect(results.map((r) => [r.code, r.stderr])).toEqual(Array(4).fill([0, '']));
  const applied = results.map((r) => JSON.parse(r.stdout) as string[]);
  // exactly one process applied the migrations; the others found nothing to do
  expect(applied.flat().sort()).toEqual(migrationFiles.map((f) => f.replace(/\.sql$/, '')).sort());

  const q = new PgTq('m', { connectionString: databaseUrl(), schema });
  try {
    await expect(q.migrate()).resolves.toEqual([]);
    const ref = await q.push('t', [1]);
    expect((await q.getTask(ref.id)).state).toBe('ready');
  } finally {
    await q.close();
  }
});

it('rejects a schema name it could not quote safely or that psql users would need to quote', () => {
  for (const bad of ['Pgtq', 'drop table x;', '1abc', '', 'a'.repeat(41)]) {
    expect(() => new PgTq('q', { connectionString: databaseUrl(), schema: bad })).toThrow(/schema/);
  }
});

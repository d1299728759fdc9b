import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseUrl, dropSchema, uniqueSchemaName, waitFor } from './helpers/database.js';

describe('test bed', () => {
  let client: pg.Client;

  beforeEach(async () => {
    client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
  });

  afterEach(async () => {
    await client.end();
  });

  it('creates, uses and drops a unique schema', async () => {
    const schema = uniqueSchemaName();
    expect(schema).toMatch(/^pgtq_test_[0-9a-f]{12}$/);
    const id = client.escapeIdentifier(schema);

    await client.query(`CREATE SCHEMA ${id}`);
    await client.query(`CREATE TABLE ${id}.items (id int PRIMARY KEY, name text NOT NULL)`);
    await client.query(`INSERT INTO ${id}.items VALUES (1, 'one'), (2, 'two')`);
    const { rows } = await client.query<{ name: string }>(`SELECT name FROM ${id}.items ORDER BY id`);
    expect(rows.map((row) => row.name)).toEqual(['one', 'two']);

    await dropSchema(schema);
    const left = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    expect(left.rowCount).toBe(0);
  });

  it('keeps schema names short and lowercase', () => {
    const name = uniqueSchemaName('A_Very_Long_Prefix_That_Would_Overflow_Identifiers');
    expect(name.length).toBeLessThanOrEqual(40);
    expect(name).toBe(name.toLowerCase());
    expect(uniqueSchemaName()).not.toBe(uniqueSchemaName());
  });

  it('waitFor resolves with the first truthy value and times out clearly', async () => {
    let calls = 0;
    await expect(waitFor(() => (++calls >= 3 ? `after ${calls}` : undefined))).resolves.toBe('after 3');
    await expect(waitFor(() => false, { timeoutMs: 30 })).rejects.toThrow(/not met within 30 ms/);
  });
});

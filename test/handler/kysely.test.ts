import { type Generated, Kysely, PostgresDialect, sql } from 'kysely';
import { expect, it } from 'vitest';
import { useTestSchema } from '../helpers/queue.js';

// The README's Kysely example: a query builder pushes through the SQL push
// function, inside its own transaction.
const db = await useTestSchema('pgtq_kysely');
await db.rows('CREATE TABLE :schema.users (id serial PRIMARY KEY, email text NOT NULL)');

interface Database {
  users: { id: Generated<number>; email: string };
}
const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: db.pool }) }).withSchema(
  db.schema,
);

const push = (email: string) =>
  sql`SELECT ${sql.id(db.schema)}.push('emails', 'send_welcome', ${JSON.stringify([email])}::jsonb) AS id`;

it('a task pushed in a Kysely transaction exists exactly when the transaction commits', async () => {
  const id = await kysely.transaction().execute(async (trx) => {
    await trx.insertInto('users').values({ email: 'ada@example.com' }).execute();
    const { rows } = await push('ada@example.com').execute(trx);
    return (rows[0] as { id: string }).id;
  });
  await expect(
    kysely.transaction().execute(async (trx) => {
      await trx.insertInto('users').values({ email: 'ghost@example.com' }).execute();
      await push('ghost@example.com').execute(trx);
      throw new Error('sign-up failed');
    }),
  ).rejects.toThrow('sign-up failed');

  const q = db.queue('emails');
  expect(await q.getTask(id)).toMatchObject({
    name: 'send_welcome',
    args: ['ada@example.com'],
    state: 'ready',
  });
  expect((await q.listTasks()).map((task) => task.args)).toEqual([['ada@example.com']]);
  expect(await db.rows('SELECT email FROM :schema.users')).toEqual([{ email: 'ada@example.com' }]);
});

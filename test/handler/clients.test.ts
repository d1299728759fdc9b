import { sql as drizzleSql } from 'drizzle-orm';
import { drizzle as drizzlePg } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import { Kysely, sql as kyselySql, PostgresDialect } from 'kysely';
import postgres from 'postgres';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { type PgTq, type PushClient, ValidationError, type Worker } from '../../src/index.js';
import { useTestSchema } from '../helpers/queue.js';

// Pushing inside the transactions of the libraries apps use, passed as they are: the task
// exists if and only if the transaction commits, and a worker runs it.
const db = await useTestSchema('pgtq_clients');
await db.rows('CREATE TABLE :schema.users (id serial PRIMARY KEY, email text NOT NULL)');
const users = `"${db.schema}".users`;

const q: PgTq = db.queue('signups');
const sent: string[] = [];
const sendWelcome = q.handler(async function send_welcome(email: string, options: { locale: string }) {
  sent.push(`${email}:${options.locale}`);
  return email;
});
let worker: Worker;
beforeAll(async () => {
  worker = q.worker({ concurrency: 2 });
  await worker.start();
});

const kysely = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: db.pool }) });
const sqlJs = postgres(db.url, { max: 2, onnotice: () => {} });
const drizzleOnPg = drizzlePg(db.pool);
const drizzleOnPostgresJs = drizzlePostgresJs(sqlJs);
const typeOrm = new DataSource({ type: 'postgres', url: db.url, poolSize: 2 });
await typeOrm.initialize();
afterAll(async () => {
  await worker.stop();
  await sqlJs.end();
  await typeOrm.destroy();
});

/** Runs `work` in a transaction of the library: committed, or rolled back when `fail` is set. */
type InTransaction = (
  work: (client: PushClient, insert: (email: string) => Promise<void>) => Promise<void>,
) => Promise<void>;

const libraries: Record<string, InTransaction> = {
  Kysely: (work) =>
    kysely.transaction().execute((trx) =>
      work(trx, async (email) => {
        await kyselySql`INSERT INTO ${kyselySql.raw(users)} (email) VALUES (${email})`.execute(trx);
      }),
    ),
  'Drizzle on node-postgres': (work) =>
    drizzleOnPg.transaction((tx) =>
      work(tx, async (email) => {
        await tx.execute(drizzleSql`INSERT INTO ${drizzleSql.raw(users)} (email) VALUES (${email})`);
      }),
    ),
  'Drizzle on postgres.js': (work) =>
    drizzleOnPostgresJs.transaction((tx) =>
      work(tx, async (email) => {
        await tx.execute(drizzleSql`INSERT INTO ${drizzleSql.raw(users)} (email) VALUES (${email})`);
      }),
    ),
  'TypeORM EntityManager': (work) =>
    typeOrm.transaction((manager) =>
      work(manager, async (email) => {
        await manager.query(`INSERT INTO ${users} (email) VALUES ($1)`, [email]);
      }),
    ),
  'TypeORM QueryRunner': async (work) => {
    const runner = typeOrm.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      await work(runner, async (email) => {
        await runner.query(`INSERT INTO ${users} (email) VALUES ($1)`, [email]);
      });
      await runner.commitTransaction();
    } catch (error) {
      await runner.rollbackTransaction();
      throw error;
    } finally {
      await runner.release();
    }
  },
  'postgres.js': async (work) => {
    await sqlJs.begin((tx) =>
      work(tx, async (email) => {
        await tx.unsafe(`INSERT INTO ${users} (email) VALUES ($1)`, [email]);
      }),
    );
  },
};

describe.each(Object.entries(libraries))('a push in a %s transaction', (library, transaction) => {
  const email = `${library.replace(/\W+/g, '-').toLowerCase()}@example.com`;

  it('is stored when the transaction commits, with its JSON intact, and a worker runs it', async () => {
    let id = '';
    await transaction(async (client, insert) => {
      await insert(email);
      const ref = await sendWelcome.with({ client }).push(email, { locale: 'en-GB' });
      id = ref.id;
    });
    const task = await q.getTask(id);
    expect(task.args).toEqual([email, { locale: 'en-GB' }]);
    await expect(q.result(id, { timeoutMs: 10_000 })).resolves.toBe(email);
    expect(sent).toContain(`${email}:en-GB`);
    expect(await db.rows(`SELECT 1 FROM ${users} WHERE email = $1`, [email])).toHaveLength(1);
  });

  it('is not stored when the transaction rolls back; several at once are too', async () => {
    const ghost = `ghost-${email}`;
    let ids: string[] = [];
    await expect(
      transaction(async (client, insert) => {
        await insert(ghost);
        const refs = await q.pushMany(
          [
            { name: 'send_welcome', args: [ghost, { locale: 'fr' }] },
            { name: 'send_welcome', args: [ghost, { locale: 'de' }], key: `k-${ghost}` },
          ],
          { client },
        );
        ids = refs.map((ref) => ref.id);
        throw new Error('sign-up failed');
      }),
    ).rejects.toThrow('sign-up failed');
    expect(ids).toHaveLength(2);
    expect(await db.rows('SELECT id FROM :schema.all_tasks WHERE id = ANY ($1::bigint[])', [ids])).toEqual(
      [],
    );
    expect(await db.rows(`SELECT 1 FROM ${users} WHERE email = $1`, [ghost])).toEqual([]);
  });
});

it('refuses a client it does not recognise, with a typed error, and stores nothing', async () => {
  const before = await db.rows('SELECT count(*)::int AS n FROM :schema.all_tasks');
  const notAClient = { execute() {} };
  // @ts-expect-error not a client
  expect(() => sendWelcome.with({ client: notAClient })).toThrow(ValidationError);
  expect(() => sendWelcome.with({ client: notAClient as never })).toThrow(
    /expected a node-postgres client or pool, or a Kysely, Drizzle or postgres.js transaction/,
  );
  expect(await db.rows('SELECT count(*)::int AS n FROM :schema.all_tasks')).toEqual(before);
});

it("takes each library's transaction type as a client, and types the arguments pushed on it", () => {
  type KyselyTransaction = Parameters<Parameters<ReturnType<typeof kysely.transaction>['execute']>[0]>[0];
  type DrizzlePgTransaction = Parameters<Parameters<typeof drizzleOnPg.transaction>[0]>[0];
  type DrizzleJsTransaction = Parameters<Parameters<typeof drizzleOnPostgresJs.transaction>[0]>[0];
  expectTypeOf<KyselyTransaction>().toExtend<PushClient>();
  expectTypeOf<DrizzlePgTransaction>().toExtend<PushClient>();
  expectTypeOf<DrizzleJsTransaction>().toExtend<PushClient>();
  expectTypeOf<postgres.TransactionSql>().toExtend<PushClient>();
  expectTypeOf<typeof typeOrm.manager>().toExtend<PushClient>();
  expectTypeOf<ReturnType<typeof typeOrm.createQueryRunner>>().toExtend<PushClient>();
  expectTypeOf<typeof db.pool>().toExtend<PushClient>();
  expectTypeOf<{ execute(): void }>().not.toExtend<PushClient>();
  const pusher = sendWelcome.with({ client: sqlJs });
  expectTypeOf(pusher.push).parameters.toEqualTypeOf<[string, { locale: string }]>();
});

it('a TypeORM manager outside a transaction pushes as on a pool', async () => {
  const ref = await sendWelcome.with({ client: typeOrm.manager }).push('plain@example.com', { locale: 'it' });
  expect((await q.getTask(ref.id)).args).toEqual(['plain@example.com', { locale: 'it' }]);
});

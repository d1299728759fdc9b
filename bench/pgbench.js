/**
 * pgbench references: the physical limit of this server for the statements a queue needs, with
 * no client library at all. Scripts live in bench/pgbench/; each runs as
 * `pgbench -n -c 2 -j 2 -T <s> -f <script>` in its own schema, and tps × rows per transaction is
 * the tasks/s figure.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { dropSchema, quoteIdent } from './harness.js';

const run = promisify(execFile);
const DIR = new URL('./pgbench/', import.meta.url);
const SCHEMA = 'pgtq_bench_pgbench';
const CLIENTS = 2;

/**
 * @typedef {{ key: string, label: string, script: string, rowsPerTx: number,
 *   remainingSql?: string }} PgbenchCase
 * @type {PgbenchCase[]}
 */
export const cases = [
  {
    key: 'pgbenchClaimDone',
    label: 'pgbench (a): claim 100 SKIP LOCKED, mark done',
    script: 'claim-mark-done.sql',
    rowsPerTx: 100,
    remainingSql: "SELECT count(*)::bigint AS n FROM tasks WHERE state = 'ready'",
  },
  {
    key: 'pgbenchClaimMove',
    label: 'pgbench (b): claim 100 SKIP LOCKED, move to history',
    script: 'claim-move-to-history.sql',
    rowsPerTx: 100,
    remainingSql: 'SELECT count(*)::bigint AS n FROM tasks',
  },
  {
    key: 'pgbenchInsert',
    label: 'pgbench (c): INSERT … SELECT 1000 rows per transaction',
    script: 'insert-1000.sql',
    rowsPerTx: 1000,
  },
];

/** The pgbench version line, or undefined when pgbench is not installed. */
export async function pgbenchVersion() {
  try {
    const { stdout } = await run('pgbench', ['--version']);
    return stdout.trim();
  } catch {
    return undefined;
  }
}

/** Rows to pre-fill for the claim scripts, learned from the previous run of each script. */
const fillFor = new Map();

/**
 * Runs one script for `seconds`. The claim scripts need ready rows for the whole run: if they ran
 * out, the run is repeated with four times as many (at most three tries), since empty claims would
 * inflate tps.
 * @param {PgbenchCase} kase
 * @param {{ url: string, db: import('pg').Pool, seconds: number, initialRows: number,
 *   log: (line: string) => void }} options
 * @returns {Promise<{ tasksPerSecond: number, tps: number, filledRows: number, exhausted: boolean }>}
 */
export async function runCase(kase, { url, db, seconds, initialRows, log }) {
  let rows = kase.remainingSql ? (fillFor.get(kase.key) ?? initialRows) : 0;
  for (let attempt = 1; ; attempt++) {
    const client = await db.connect();
    try {
      await prepare(client, rows);
      const tps = await pgbench(url, kase.script, seconds);
      const tasksPerSecond = tps * kase.rowsPerTx;
      let exhausted = false;
      if (kase.remainingSql) {
        const remaining = Number((await client.query(kase.remainingSql)).rows[0]?.n);
        exhausted = remaining === 0;
        // Enough rows for next time too: half as many again as this run took.
        fillFor.set(
          kase.key,
          Math.max(rows, Math.ceil((tasksPerSecond * seconds * 1.5) / 100_000) * 100_000),
        );
      }
      if (!exhausted || attempt >= 3) return { tasksPerSecond, tps, filledRows: rows, exhausted };
      log(`  ${kase.script}: ran out of ${rows} ready rows; again with ${rows * 4}`);
      rows *= 4;
    } finally {
      await client.query('RESET search_path').catch(() => {});
      client.release();
      await dropSchema(db, SCHEMA);
    }
  }
}

/**
 * A fresh schema with the tables and `rows` ready tasks, vacuumed and analysed like a table
 * autovacuum has seen.
 * @param {import('pg').PoolClient} client
 * @param {number} rows
 */
async function prepare(client, rows) {
  await client.query(`DROP SCHEMA IF EXISTS ${quoteIdent(SCHEMA)} CASCADE`);
  await client.query(`CREATE SCHEMA ${quoteIdent(SCHEMA)}`);
  await client.query(`SET search_path TO ${quoteIdent(SCHEMA)}`);
  await client.query(await readFile(new URL('schema.sql', DIR), 'utf8'));
  if (rows > 0) {
    await client.query(
      `INSERT INTO tasks (queue, name, args, state)
       SELECT 'bench', 'noop', jsonb_build_array(i), 'ready' FROM generate_series(1, $1::int) AS i`,
      [rows],
    );
  }
  await client.query('VACUUM ANALYZE tasks');
  await client.query('VACUUM ANALYZE history');
}

/**
 * @param {string} url
 * @param {string} script
 * @param {number} seconds
 * @returns {Promise<number>} transactions per second
 */
async function pgbench(url, script, seconds) {
  const args = ['-n', '-c', String(CLIENTS), '-j', String(CLIENTS), '-T', String(seconds)];
  args.push('-f', fileURLToPath(new URL(script, DIR)), url);
  // search_path for every pgbench connection, so the scripts name no schema.
  const env = { ...process.env, PGOPTIONS: `${process.env.PGOPTIONS ?? ''} -c search_path=${SCHEMA}`.trim() };
  const { stdout } = await run('pgbench', args, { env, maxBuffer: 16 * 1024 * 1024 });
  const match = /^tps = ([\d.]+)/m.exec(stdout);
  if (!match?.[1]) throw new Error(`pgbench ${script}: no tps in its output:\n${stdout}`);
  const failed = /number of failed transactions: (\d+)/.exec(stdout);
  if (failed?.[1] && Number(failed[1]) > 0)
    throw new Error(`pgbench ${script}: ${failed[1]} failed transactions`);
  return Number(match[1]);
}

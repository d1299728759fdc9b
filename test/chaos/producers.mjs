/**
 * Producers: each pushes tasks one transaction at a time, on its own connection,
 * the way an application does: a business row, the push, and a row in
 * chaos.pushes naming the push's logical id, all in one transaction, so that the
 * database itself says which pushes committed. One in ten transactions is rolled
 * back on purpose.
 *
 * Producers live through the faults: a connection that dies is replaced and the
 * loop goes on. A push whose COMMIT was sent but never answered has an unknown
 * outcome; it is not counted either way here but resolved afterwards from
 * chaos.pushes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { isTransient } from './admin.mjs';

const ROLLBACK_SHARE = 0.1;
const DELAYED_SHARE = 0.15;
const FAIL_FIRST_SHARE = 0.15;
const SLOW_SHARE = 0.35;
const GROUPED_SHARE = 0.5;
const GROUPS = 8;

/** What a producer decided for one push: how its task behaves, and whether it commits. */
function plan(random = Math.random) {
  return {
    delayMs: random() < DELAYED_SHARE ? 200 + Math.floor(random() * 2800) : 0,
    failFirst: random() < FAIL_FIRST_SHARE,
    // Most tasks are quick; some take tens to hundreds of ms, long enough to be caught by a fault.
    slowMs: random() < SLOW_SHARE ? 30 + Math.floor(random() * 370) : Math.floor(random() * 10),
    rollback: random() < ROLLBACK_SHARE,
    // Half in groups, so that claims go through claim_flow's turns too.
    group: random() < GROUPED_SHARE ? `group-${Math.floor(random() * GROUPS)}` : null,
  };
}

/** Shared tallies of every producer; the database, not these, decides what committed. */
export class Tally {
  attempted = 0;
  /** COMMIT acknowledged: each must be in chaos.pushes, even across the crash. @type {Set<string>} */
  committed = new Set();
  /** Rolled back on purpose: none may be in chaos.pushes or have an effect. @type {Set<string>} */
  rolledBack = new Set();
  /** The connection died before COMMIT was sent: the transaction cannot have committed. @type {Set<string>} */
  aborted = new Set();
  /** The connection died while COMMIT was on its way: resolved from chaos.pushes. @type {Set<string>} */
  unknown = new Set();
  reconnects = 0;
  /** Errors that were not a lost connection: a producer stops on one. @type {string[]} */
  errors = [];
}

/**
 * One producer loop. `via` 'api': `effect.with({ client, delayMs }).push(...)`;
 * 'sql': `SELECT pgtq.push(...)` in the same kind of transaction.
 * @param {{ id: string, via: 'api' | 'sql', url: string, effect: any, queue: string, task: string,
 *   tally: Tally, stop: AbortSignal, pauseMs: number }} options
 */
export async function produce({ id, via, url, effect, queue, task, tally, stop, pauseMs }) {
  let client;
  let n = 0;
  while (!stop.aborted) {
    if (!client) {
      client = await connect(url, id, stop);
      if (!client) return;
    }
    const logicalId = `${id}-${++n}`;
    const decided = plan();
    tally.attempted++;
    let stage = 'before-commit';
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO chaos.orders (logical_id, producer) VALUES ($1, $2)', [logicalId, id]);
      const taskId = await push(client, via, { effect, queue, task, logicalId, decided });
      await client.query(
        `INSERT INTO chaos.pushes (logical_id, task_id, via, delay_ms, fail_first, slow_ms)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [logicalId, taskId, via, decided.delayMs, decided.failFirst, decided.slowMs],
      );
      if (decided.rollback) {
        await client.query('ROLLBACK');
        tally.rolledBack.add(logicalId);
      } else {
        stage = 'commit';
        await client.query('COMMIT');
        tally.committed.add(logicalId);
      }
    } catch (error) {
      if (!isTransient(error)) {
        tally.errors.push(`${id} ${logicalId}: ${error instanceof Error ? error.message : String(error)}`);
        await client.end().catch(() => {});
        return;
      }
      // The connection is gone; so is the transaction, unless COMMIT reached the server first.
      (stage === 'commit' ? tally.unknown : tally.aborted).add(logicalId);
      tally.reconnects++;
      await client.end().catch(() => {});
      client = undefined;
    }
    await sleep(pauseMs * (0.5 + Math.random()));
  }
  await client?.end().catch(() => {});
}

async function push(client, via, { effect, queue, task, logicalId, decided }) {
  const args = [logicalId, { failFirst: decided.failFirst, slowMs: decided.slowMs }];
  if (via === 'api') {
    const options = {
      client,
      ...(decided.delayMs > 0 ? { delayMs: decided.delayMs } : {}),
      ...(decided.group ? { group: decided.group } : {}),
    };
    const ref = await effect.with(options).push(...args);
    return ref.id;
  }
  const { rows } = await client.query(
    `SELECT pgtq.push($1, $2, $3::jsonb, run_at => now() + make_interval(secs => $4::int / 1000.0),
                      group_key => $5) AS id`,
    [queue, task, JSON.stringify(args), decided.delayMs, decided.group],
  );
  return rows[0].id;
}

/** A new connection, retried while the server is away; undefined if the run stops first. */
async function connect(url, id, stop) {
  while (!stop.aborted) {
    const client = new pg.Client({ connectionString: url, application_name: `pgtq chaos producer ${id}` });
    // A connection terminated between queries reports here; the next query fails and the loop reconnects.
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      if (!isTransient(error)) throw error;
      await sleep(100);
    }
  }
  return undefined;
}

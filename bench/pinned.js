/**
 * The pinned-horizon measure: a steady offered load while a REPEATABLE READ transaction on another
 * connection holds the xmin horizon, so vacuum can remove nothing and dead entries pile up at the
 * front of each subject's claim index. Three phases (before, pinned, after the COMMIT); per phase the
 * push→start latency, the throughput and the backlog; every few seconds the dead tuples and the size
 * of the subject's hot tables, and the time of a probe of its claim query and of its finish statement.
 */
import pg from 'pg';
import { now, sleep } from './harness.js';
import { percentile } from './stats.js';

/**
 * @typedef {{ rate: number, batchMs: number, concurrency: number, beforeS: number, pinS: number,
 *   afterS: number, sampleS: number, drainCapMs: number }} PinnedScale
 * @typedef {{ at: number, phase: string, deadTuples: number, liveTuples: number, bytes: number,
 *   vacuums: number, backlog: number, claimMs: number, claimBuffers: number,
 *   finishMs: number | null, finishBuffers: number | null, xminHeld: boolean }} Sample
 */

/** Each probe runs this many times per sample; the median is kept. */
const PROBES_PER_SAMPLE = 3;

/**
 * Runs the three phases against one subject, whose worker is started here.
 * @param {any} subject a WorkerSubject with hotTables(), claimProbe() and finishProbe()
 * @param {{ url: string, db: pg.Pool, log: (line: string) => void }} ctx
 * @param {PinnedScale} scale
 */
export async function measurePinned(subject, ctx, scale) {
  const { db, log } = ctx;
  const tables = await subject.hotTables();
  const probeSql = await subject.claimProbe(scale.concurrency);
  // A clean start: nothing dead in the hot tables, fresh statistics, nothing else holding a snapshot.
  await ctx.db.query(`VACUUM (ANALYZE) ${tables.join(', ')}`);
  await ctx.db.query('CHECKPOINT').catch(() => {});
  const others = await otherSnapshots(db);
  if (others.count > 0)
    log(
      `pinned: ${others.count} other connection(s) hold a snapshot (oldest ${others.oldestAge} transactions old); vacuum may be held back by them too`,
    );

  const recorder = subject.recorder;
  recorder.active = true;
  /** @type {number[]} push time of task i */
  const pushedAt = [];
  const probe = new pg.Client({ connectionString: ctx.url });
  const pin = new pg.Client({ connectionString: ctx.url });
  await probe.connect();
  await pin.connect();
  const pinPid = (await pin.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;

  /** @type {Sample[]} */
  const samples = [];
  /** @type {{ name: string, startedAt: number, endedAt: number, pushedFrom: number, pushedTo: number,
   *   backlog: number, pinnedXmin?: string }[]} */
  const phases = [];
  let phase = 'before';
  let stopping = false;

  const producer = (async () => {
    const started = now();
    let pushed = 0;
    while (!stopping) {
      const due = Math.floor(((now() - started) * scale.rate) / 1000);
      const count = Math.min(due - pushed, Math.ceil((scale.rate * scale.batchMs) / 1000) * 4);
      if (count <= 0) {
        await sleep(scale.batchMs);
        continue;
      }
      const at = now();
      for (let i = pushed; i < pushed + count; i++) pushedAt[i] = at;
      if (count === 1) await subject.pushOne(pushed);
      else await subject.pushRange(pushed, pushed + count);
      pushed += count;
    }
    return pushed;
  })();

  const sampler = (async () => {
    while (!stopping) {
      const at = now();
      samples.push({ at, phase, ...(await sample(db, probe, tables, probeSql, subject, pinPid, scale)) });
      const wait = scale.sampleS * 1000 - (now() - at);
      if (wait > 0) await sleepUnless(wait, () => stopping);
    }
  })();

  let producerError;
  producer.catch((error) => {
    producerError = error;
  });

  try {
    await subject.startWorker(scale.concurrency);
    const runPhase = async (/** @type {string} */ name, /** @type {number} */ seconds, extra = {}) => {
      phase = name;
      const startedAt = now();
      const pushedFrom = pushedAt.length;
      await sleepUnless(seconds * 1000, () => producerError !== undefined);
      if (producerError) throw producerError;
      const endedAt = now();
      const backlog = await countUnfinished(subject);
      phases.push({ name, startedAt, endedAt, pushedFrom, pushedTo: pushedAt.length, backlog, ...extra });
      log(`pinned · ${name} (${seconds} s): ${pushedAt.length - pushedFrom} pushed, backlog ${backlog}`);
    };

    await runPhase('before', scale.beforeS);
    // The horizon pin: a snapshot taken by a query in a REPEATABLE READ transaction, held open.
    await pin.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await pin.query('SELECT count(*) FROM pg_class');
    const xmin = await backendXmin(db, pinPid);
    if (xmin === null) throw new Error('the held transaction has no backend_xmin: the horizon is not pinned');
    await runPhase('pinned', scale.pinS, { pinnedXmin: xmin });
    const stillHeld = await backendXmin(db, pinPid);
    if (stillHeld !== xmin) throw new Error(`the pin's backend_xmin moved from ${xmin} to ${stillHeld}`);
    await pin.query('COMMIT');
    await runPhase('after', scale.afterS);
  } finally {
    stopping = true;
    await Promise.allSettled([producer, sampler]);
    await pin.query('ROLLBACK').catch(() => {});
    await Promise.allSettled([pin.end(), probe.end()]);
  }
  if (producerError) throw producerError;

  // Tasks pushed near the end still count for their phase once they start.
  const drainStarted = now();
  while (recorder.starts.size < pushedAt.length && now() - drainStarted < scale.drainCapMs) await sleep(50);
  recorder.active = false;
  const gaveUpAt = now();

  return {
    tables,
    probe: probeSql,
    otherSnapshotsAtStart: others,
    phases: phases.map((p) => summarisePhase(p, pushedAt, recorder.starts, samples, gaveUpAt)),
    samples: samples.map(({ at, ...rest }) => ({
      atS: round((at - (phases[0]?.startedAt ?? at)) / 1000),
      ...rest,
    })),
  };
}

/**
 * @param {{ name: string, startedAt: number, endedAt: number, pushedFrom: number, pushedTo: number,
 *   backlog: number, pinnedXmin?: string }} p
 * @param {number[]} pushedAt
 * @param {Map<number, number>} starts
 * @param {Sample[]} samples
 * @param {number} gaveUpAt
 */
function summarisePhase(p, pushedAt, starts, samples, gaveUpAt) {
  const seconds = (p.endedAt - p.startedAt) / 1000;
  const latencies = [];
  let missing = 0;
  for (let i = p.pushedFrom; i < p.pushedTo; i++) {
    const start = starts.get(i);
    if (start === undefined) missing++;
    latencies.push((start ?? gaveUpAt) - /** @type {number} */ (pushedAt[i]));
  }
  let handled = 0;
  for (const at of starts.values()) if (at >= p.startedAt && at < p.endedAt) handled++;
  const inPhase = samples.filter((s) => s.phase === p.name);
  const last = inPhase.at(-1);
  return {
    name: p.name,
    seconds: round(seconds),
    pushedPerS: round((p.pushedTo - p.pushedFrom) / seconds),
    handledPerS: round(handled / seconds),
    pickupP50Ms: round(percentile(latencies, 50)),
    pickupP99Ms: round(percentile(latencies, 99)),
    notStarted: missing,
    backlog: p.backlog,
    deadTuples: last?.deadTuples ?? null,
    // VACUUMs (manual or auto) of the hot tables since the first sample, which follows the VACUUM at the start.
    vacuums: last && samples[0] ? last.vacuums - samples[0].vacuums : null,
    bytes: last?.bytes ?? null,
    claimMs: last?.claimMs ?? null,
    claimBuffers: last?.claimBuffers ?? null,
    claimMsMean: mean(inPhase.map((s) => s.claimMs)),
    finishMs: last?.finishMs ?? null,
    finishBuffers: last?.finishBuffers ?? null,
    finishMsMean: mean(inPhase.flatMap((s) => (s.finishMs === null ? [] : [s.finishMs]))),
    ...(p.pinnedXmin ? { pinnedXmin: p.pinnedXmin } : {}),
  };
}

/** @param {number[]} values @returns {number | null} */
function mean(values) {
  return values.length ? round(values.reduce((sum, v) => sum + v, 0) / values.length) : null;
}

/**
 * One sample: the hot tables' dead tuples and size, the backlog, and the claim and finish probes.
 * @param {pg.Pool} db
 * @param {pg.Client} probe
 * @param {string[]} tables
 * @param {string} probeSql
 * @param {any} subject
 * @param {number} pinPid
 * @param {PinnedScale} scale
 */
async function sample(db, probe, tables, probeSql, subject, pinPid, scale) {
  const { rows } = await db.query(
    `SELECT coalesce(sum(s.n_dead_tup), 0)::bigint AS dead, coalesce(sum(s.n_live_tup), 0)::bigint AS live,
            coalesce(sum(s.vacuum_count + s.autovacuum_count), 0)::bigint AS vacuums,
            coalesce(sum(pg_total_relation_size(s.relid)), 0)::bigint AS bytes
     FROM pg_stat_user_tables AS s
     -- a partitioned table counts by its partitions, which hold its rows
     WHERE s.relid = ANY ($1::regclass[])
        OR s.relid IN (SELECT p.relid FROM unnest($1::regclass[]) AS t, pg_partition_tree(t) AS p WHERE p.isleaf)`,
    [tables],
  );
  const claim = await probeMedian(probe, async () => probeSql);
  const finish = await probeMedian(probe, (client) => subject.finishProbe(client, scale.concurrency));
  return {
    deadTuples: Number(rows[0].dead),
    liveTuples: Number(rows[0].live),
    vacuums: Number(rows[0].vacuums),
    bytes: Number(rows[0].bytes),
    backlog: await countUnfinished(subject),
    claimMs: claim.ms ?? Number.NaN,
    claimBuffers: claim.buffers ?? 0,
    // null when no task was running at that moment
    finishMs: finish.ms,
    finishBuffers: finish.buffers,
    xminHeld: (await backendXmin(db, pinPid)) !== null,
  };
}

/**
 * A probe taken PROBES_PER_SAMPLE times: the median time and the last run's buffers, or nulls if
 * there was nothing to probe each time.
 * @param {pg.Client} client
 * @param {Parameters<typeof explainProbe>[1]} statement
 * @returns {Promise<{ ms: number | null, buffers: number | null }>}
 */
async function probeMedian(client, statement) {
  const timings = [];
  let buffers = null;
  for (let k = 0; k < PROBES_PER_SAMPLE; k++) {
    const result = await explainProbe(client, statement);
    if (!result) continue;
    timings.push(result.ms);
    buffers = result.buffers;
  }
  return { ms: timings.length ? round(percentile(timings, 50), 3) : null, buffers };
}

/**
 * A probe, run for real (EXPLAIN ANALYZE executes it, locks included) in a transaction that is
 * rolled back, so no task is taken from the worker for longer than the probe. `statement` gives
 * the statement inside that transaction (the finish probe first locks running tasks to name them),
 * or null when there is nothing to probe; the probe is then skipped.
 * @param {pg.Client} client
 * @param {(client: pg.Client) => Promise<string | { text: string, values: unknown[] } | null>} statement
 */
async function explainProbe(client, statement) {
  await client.query('BEGIN');
  try {
    const sql = await statement(client);
    if (sql === null) return null;
    const { text, values } = typeof sql === 'string' ? { text: sql, values: [] } : sql;
    const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, values);
    const plan = rows[0]['QUERY PLAN'][0];
    return {
      ms: plan['Execution Time'] + plan['Planning Time'],
      buffers: (plan.Plan['Shared Hit Blocks'] ?? 0) + (plan.Plan['Shared Read Blocks'] ?? 0),
    };
  } finally {
    await client.query('ROLLBACK');
  }
}

/** @param {any} subject */
async function countUnfinished(subject) {
  const { db, unfinishedSql, unfinishedParams = [] } = subject.unfinished();
  const { rows } = await db.query(unfinishedSql, unfinishedParams);
  return Number(rows[0]?.n);
}

/** @param {pg.Pool} db @param {number} pid @returns {Promise<string | null>} */
async function backendXmin(db, pid) {
  const { rows } = await db.query('SELECT backend_xmin::text AS xmin FROM pg_stat_activity WHERE pid = $1', [
    pid,
  ]);
  return rows[0]?.xmin ?? null;
}

/** Other connections holding a snapshot (which hold back vacuum as well). @param {pg.Pool} db */
async function otherSnapshots(db) {
  const { rows } = await db.query(
    `SELECT count(*)::int AS count, coalesce(max(age(backend_xmin)), 0)::int AS oldest
     FROM pg_stat_activity WHERE backend_xmin IS NOT NULL AND pid <> pg_backend_pid()`,
  );
  return { count: rows[0].count, oldestAge: rows[0].oldest };
}

/** Sleeps `ms`, waking early once `stop()` is true (checked every 100 ms). */
async function sleepUnless(/** @type {number} */ ms, /** @type {() => boolean} */ stop) {
  const until = now() + ms;
  while (!stop()) {
    const left = until - now();
    if (left <= 0) return;
    await sleep(Math.min(100, left));
  }
}

/** @param {number} value */
function round(value, digits = 2) {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

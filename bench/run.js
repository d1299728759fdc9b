/**
 * `npm run bench`: measures pgtq, graphile-worker and pg-boss in one run, on one PostgreSQL, with
 * the same N, and prints median (min–max) over repeats next to pgbench and bare-SQL references.
 * Speed is never asserted: the exit code is 0 unless something broke.
 *
 *   npm run bench                        all subjects, 3 repeats
 *   npm run bench -- --quick             smoke run: small N, 1 repeat
 *   npm run bench -- --only pgtq         pgtq alone (also: graphile-worker, pg-boss, pgbench; comma-separated)
 *   npm run bench -- --repeats 5
 *   npm run bench -- --measures pinned --pin-seconds 600   one measure, a 10-minute pin
 *   npm run bench -- --only pgtq --measures processes      pgtq in 1, 2, 4 and 8 worker processes
 *
 * Database: DATABASE_URL, else PGTQ_TEST_DATABASE_URL, else a throwaway embedded server.
 * Results: printed, and written as JSON under bench/results/.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { redactUrl } from '../dist/config.js';
import { measureDashboard } from './dashboard.js';
import { measureFlow } from './flow.js';
import { measureGraph } from './graph.js';
import { now, sleep } from './harness.js';
import { measurePinned } from './pinned.js';
import { measureProcesses } from './processes.js';
import { latencyFigures, rate, summarize } from './stats.js';

/**
 * What a subject is handed for one case.
 * @typedef {{ url: string, db: pg.Pool, concurrency: number, log: (line: string) => void,
 *   settle: () => Promise<void> }} SubjectContext
 */

const SUBJECTS = ['pgtq', 'graphile-worker', 'pg-boss'];
const PEERS = ['graphile-worker', 'pg-boss'];
const SELECTABLE = [...SUBJECTS, 'pgbench'];

const FULL = {
  repeats: 3,
  enqueueOne: 5_000,
  enqueueBulk: 100_000,
  bulkBatch: 1_000,
  process: 100_000,
  concurrencies: [10, 50],
  processCapMs: 30_000,
  latencySamples: 300,
  latencyPauseMs: 5,
  latencyCapMs: 20_000,
  latenessCount: 100,
  latenessAheadMs: 1_000,
  latenessSpacingMs: 10,
  latenessCapMs: 40_000,
  history: 1_000_000,
  bareBatch: 100,
  bareConnections: 2,
  pgbenchSeconds: 5,
  pgbenchInitialRows: 1_000_000,
  /** @type {import('./pinned.js').PinnedScale} */
  pinned: {
    rate: 2_000,
    batchMs: 10,
    concurrency: 10,
    beforeS: 30,
    pinS: 120,
    afterS: 150,
    sampleS: 5,
    drainCapMs: 30_000,
  },
  /** @type {import('./processes.js').ProcessesScale} */
  processes: { counts: [1, 2, 4, 8], concurrency: 10 },
  /** @type {import('./flow.js').FlowScale} */
  flow: { backlog: 20_000, samples: 20, spacingMs: 100, capMs: 30_000 },
  /** Tasks after one task (fan-out), and before one task (fan-in). */
  graph: 10_000,
  /** @type {import('./dashboard.js').DashboardScale} */
  dashboard: { finished: 1_000_000, pending: 100_000 },
};
/** @type {typeof FULL} */
const QUICK = {
  ...FULL,
  repeats: 1,
  enqueueOne: 200,
  enqueueBulk: 5_000,
  process: 2_000,
  processCapMs: 5_000,
  latencySamples: 30,
  latencyCapMs: 5_000,
  latenessCount: 10,
  latenessCapMs: 5_000,
  history: 100_000,
  pgbenchSeconds: 2,
  pgbenchInitialRows: 200_000,
  pinned: { ...FULL.pinned, beforeS: 5, pinS: 10, afterS: 5, sampleS: 2.5, drainCapMs: 10_000 },
  flow: { backlog: 2_000, samples: 5, spacingMs: 50, capMs: 10_000 },
  graph: 1_000,
  dashboard: { finished: 50_000, pending: 5_000 },
};
/** Concurrency of the idle worker in the latency and lateness measures. */
const IDLE_CONCURRENCY = 10;
/**
 * Untimed pushes before the enqueue-one measure (and one untimed batch before the bulk one): pool
 * connections and prepared statements are made before the clock starts, for every subject alike.
 */
const WARM_UP_PUSHES = 50;
/** After a worker starts, before the first push: its LISTEN connection is up by then. */
const SETTLE_MS = 250;

/**
 * The peer profile the pinned-horizon measure runs (one each: its phases take minutes): the one
 * that comes closest to keeping up with the offered load at c = 10 (pg-boss's notify profile
 * handles about a third of 2,000 tasks/s there, so its backlog would say nothing about the pin).
 */
const PINNED_PROFILES = { 'graphile-worker': 'fast', 'pg-boss': 'batch' };

/**
 * One line of the results table.
 * `cpu` rows are printed by printProcesses, below the main table.
 * @typedef {{ key: string, label: string, unit: string, higherIsBetter: boolean,
 *   section: 'main' | 'reference' | 'cpu' }} Row
 */
/**
 * One measure: what it runs and which rows it fills.
 * @typedef {{ key: string, rows: Row[], only?: string[], once?: boolean, profiles?: Record<string, string>,
 *   concurrency: number, run: (subject: any, scale: typeof FULL) => Promise<CaseResult> }} Case
 * @typedef {{ figures: Record<string, number>, flags?: Record<string, string>, notes?: string[],
 *   pinned?: any }} CaseResult
 */

/** @param {typeof FULL} scale @returns {Case[]} */
function defineCases(scale) {
  const n = fmtInt(scale.process);
  /** @type {Case[]} */
  const cases = [
    {
      key: 'enqueueOne',
      concurrency: IDLE_CONCURRENCY,
      rows: [row('enqueueOne', `enqueue one at a time, 1 client, N = ${fmtInt(scale.enqueueOne)}`)],
      run: async (subject, s) => {
        await subject.enqueueOne(WARM_UP_PUSHES);
        return { figures: { enqueueOne: rate(s.enqueueOne, await subject.enqueueOne(s.enqueueOne)) } };
      },
    },
    {
      key: 'enqueueBulk',
      concurrency: IDLE_CONCURRENCY,
      rows: [
        row(
          'enqueueBulk',
          `enqueue in bulk, batches of ${fmtInt(scale.bulkBatch)}, N = ${fmtInt(scale.enqueueBulk)}`,
        ),
      ],
      run: async (subject, s) => {
        await subject.enqueueBulk(s.bulkBatch, s.bulkBatch);
        return {
          figures: {
            enqueueBulk: rate(s.enqueueBulk, await subject.enqueueBulk(s.enqueueBulk, s.bulkBatch)),
          },
        };
      },
    },
    ...scale.concurrencies.map((c) => ({
      key: `process${c}`,
      concurrency: c,
      rows: [row(`process${c}`, `process ${n} pre-pushed no-op tasks, c = ${c}`)],
      run: async (/** @type {any} */ subject, /** @type {typeof FULL} */ s) => {
        await subject.prepush(s.process, s.bulkBatch);
        const result = await subject.process(s.process, c, { capMs: s.processCapMs });
        return processResult(`process${c}`, result, s);
      },
    })),
    {
      key: 'latency',
      concurrency: IDLE_CONCURRENCY,
      rows: [
        row('latencyP50', 'push→start latency, idle worker, p50', 'ms', false),
        row('latencyP95', 'push→start latency, p95', 'ms', false),
        row('latencyP99', 'push→start latency, p99', 'ms', false),
      ],
      run: async (subject, s) => {
        const { samples, capped } = await subject.latency(IDLE_CONCURRENCY, {
          samples: s.latencySamples,
          pauseMs: s.latencyPauseMs,
          capMs: s.latencyCapMs,
          sampleTimeoutMs: 60_000,
        });
        const { p50, p95, p99 } = latencyFigures(samples);
        const flag = capped ? `${samples.length} samples (time cap)` : undefined;
        return {
          figures: { latencyP50: p50, latencyP95: p95, latencyP99: p99 },
          flags: flag ? { latencyP50: flag, latencyP95: flag, latencyP99: flag } : {},
          notes: [`${samples.length} samples`],
        };
      },
    },
    {
      key: 'lateness',
      concurrency: IDLE_CONCURRENCY,
      rows: [
        row(
          'latenessP50',
          `delayed task lateness (due in ${scale.latenessAheadMs / 1000} s), p50`,
          'ms',
          false,
        ),
        row('latenessP99', 'delayed task lateness, p99', 'ms', false),
      ],
      run: async (subject, s) => {
        const { samples, capped, missing } = await subject.lateness(IDLE_CONCURRENCY, {
          count: s.latenessCount,
          aheadMs: s.latenessAheadMs,
          spacingMs: s.latenessSpacingMs,
          capMs: s.latenessCapMs,
        });
        const { p50, p99 } = latencyFigures(samples);
        const flag = capped ? `≥: ${missing} of ${s.latenessCount} not started by the time cap` : undefined;
        return {
          figures: { latenessP50: p50, latenessP99: p99 },
          flags: flag ? { latenessP50: flag, latenessP99: flag } : {},
        };
      },
    },
    {
      key: 'history',
      only: ['pgtq'],
      concurrency: 10,
      // Paired in one run, empty history first: on a shared machine two runs minutes
      // apart differ by more than a large history costs.
      rows: [
        row('historyEmpty', `process ${n}, c = 10, empty history (paired run)`),
        row('history', `process ${n}, c = 10, then with ${fmtInt(scale.history)} finished tasks in history`),
      ],
      run: async (subject, s) => {
        // An untimed run first, so that neither timed run pays for warming up.
        await subject.prepush(s.bulkBatch, s.bulkBatch);
        await subject.process(s.bulkBatch, 10, { capMs: s.processCapMs });
        await subject.stopWorkers();
        await subject.prepush(s.process, s.bulkBatch);
        const empty = processResult(
          'historyEmpty',
          await subject.process(s.process, 10, { capMs: s.processCapMs }),
          s,
        );
        await subject.stopWorkers();
        await subject.fillHistory(s.history);
        await subject.prepush(s.process, s.bulkBatch);
        const full = processResult(
          'history',
          await subject.process(s.process, 10, { capMs: s.processCapMs }),
          s,
        );
        return {
          figures: { ...empty.figures, ...full.figures },
          flags: { ...empty.flags, ...full.flags },
          notes: [...empty.notes, ...full.notes],
        };
      },
    },
    {
      key: 'processes',
      only: ['pgtq'],
      concurrency: scale.processes.concurrency,
      rows: processesRows(scale),
      run: async (subject, s) => processesResult(await measureProcesses(subject, subject.ctx, s), s),
    },
    {
      key: 'flow',
      only: ['pgtq'],
      concurrency: 10,
      rows: [
        row('flowPlain', `flow control: process ${n}, c = 10, plain tasks (paired run)`),
        row('flowGroups', `flow control: process ${n}, c = 10, 1,000 groups, groupConcurrency 5`),
        row('flowRate', `flow control: process ${n}, c = 10, rateLimit 100,000/s (not binding)`),
        row(
          'flowBehindPlainP50',
          `pickup of a task pushed behind ${fmtInt(scale.flow.backlog)} plain tasks (FIFO), p50`,
          'ms',
          false,
        ),
        row('flowBehindGroupP50', 'pickup of a new group’s task behind a group of as many, p50', 'ms', false),
        row('flowBehindGroupP99', 'pickup of a new group’s task behind a group of as many, p99', 'ms', false),
      ],
      run: (subject, s) => measureFlow(subject, s, (key, result) => processResult(key, result, s)),
    },
    {
      key: 'graph',
      only: ['pgtq'],
      concurrency: 10,
      rows: [
        row(
          'graphPlain',
          `tasks that run after others: ${fmtInt(scale.graph + 1)} plain tasks, push to done, c = 10`,
        ),
        row('graphFanOut', `fan-out: 1 task, then ${fmtInt(scale.graph)} after it, push to done`),
        row('graphFanIn', `fan-in: ${fmtInt(scale.graph)} tasks, then 1 after all, push to done`),
        row('graphEdgeUs', 'cost of an edge over a plain task (mean of fan-out and fan-in)', 'µs', false),
      ],
      run: (subject, s) => measureGraph(subject, s),
    },
    {
      key: 'dashboard',
      only: ['pgtq'],
      concurrency: 0,
      rows: [
        ['dashboardOverview', 'overview, every queue'],
        ['dashboardOverviewQueue', 'overview, one queue'],
        ['dashboardTasks', 'task list, first page'],
        ['dashboardTasksFailed', 'task list, failed tasks'],
        ['dashboardTasksName', 'task list, one queue and task name'],
        ['dashboardTasksDeep', 'task list, a page in the middle of history (keyset)'],
        ['dashboardTask', 'one task'],
        ['dashboardFailures', 'failures by name and first line'],
        ['dashboardMetrics', '/metrics scrape'],
      ].flatMap(([key, label], i) => [
        row(
          key,
          `${i === 0 ? `dashboard on ${fmtInt(scale.dashboard.finished)} finished + ${fmtInt(scale.dashboard.pending)} pending: ` : ''}${label}, database time`,
          'ms',
          false,
        ),
        row(`${key}Wall`, `${label}, whole request`, 'ms', false),
      ]),
      run: (subject, s) => measureDashboard(subject, s),
    },
    {
      key: 'bareSql',
      only: ['pgtq'],
      concurrency: 10,
      rows: [
        {
          ...row(
            'bareSql',
            `pgtq claim + finish SQL alone, batch ${scale.bareBatch}, ${scale.bareConnections} connections`,
          ),
          section: 'reference',
        },
      ],
      run: async (subject, s) => {
        await subject.prepush(s.process, s.bulkBatch);
        const ms = await subject.bareSql(s.process, { batch: s.bareBatch, connections: s.bareConnections });
        return { figures: { bareSql: rate(s.process, ms) } };
      },
    },
    {
      key: 'pinned',
      concurrency: scale.pinned.concurrency,
      once: true,
      profiles: PINNED_PROFILES,
      // Its own report (printPinned): three phases per subject, not one figure.
      rows: [],
      run: async (subject, s) => {
        const pinned = await measurePinned(subject, subject.ctx, s.pinned);
        const during = pinned.phases.find((phase) => phase.name === 'pinned');
        return {
          figures: during
            ? { pinnedP99: during.pickupP99Ms, pinnedDeadTuples: during.deadTuples ?? Number.NaN }
            : {},
          pinned,
        };
      },
    },
  ];
  return cases;
}

/**
 * The `processes` measure's rows: throughput per count, then pickup p50 and p99 per count (one figure
 * per row, as the table shows them), then the CPU the server and the worker processes used.
 * @param {typeof FULL} scale
 * @returns {Row[]}
 */
function processesRows(scale) {
  const { counts, concurrency } = scale.processes;
  const processes = (/** @type {number} */ count) => `${count} worker process${count === 1 ? '' : 'es'}`;
  const idle = (/** @type {number} */ count) => `${count} idle process${count === 1 ? '' : 'es'}`;
  /** @param {string} key @param {string} label @returns {Row} */
  const cpu = (key, label) => ({ ...row(key, label, 'cores'), section: 'cpu' });
  return [
    ...counts.map((count) =>
      row(
        `processes${count}`,
        `process ${fmtInt(scale.process)} no-op tasks, ${processes(count)} × c = ${concurrency}`,
      ),
    ),
    ...counts.flatMap((count) => [
      row(`pickupP50x${count}`, `pickup p50, ${idle(count)}`, 'ms', false),
      row(`pickupP99x${count}`, `pickup p99, ${idle(count)}`, 'ms', false),
    ]),
    ...counts.flatMap((count) => [
      cpu(`serverCores${count}`, `PostgreSQL server, ${processes(count)}`),
      cpu(`workerCores${count}`, `the worker processes, ${processes(count)}`),
    ]),
  ];
}

/**
 * @param {import('./processes.js').CountResult[]} counts
 * @param {typeof FULL} s
 * @returns {CaseResult}
 */
function processesResult(counts, s) {
  /** @type {Required<Pick<CaseResult, 'figures' | 'flags' | 'notes'>>} */
  const result = { figures: {}, flags: {}, notes: [] };
  for (const { processes: count, run, latency, serverCores, workerCores } of counts) {
    const throughput = processResult(`processes${count}`, run, s);
    const { p50, p99 } = latencyFigures(latency.samples);
    const p50Key = `pickupP50x${count}`;
    const p99Key = `pickupP99x${count}`;
    Object.assign(result.figures, throughput.figures, {
      [p50Key]: p50,
      [p99Key]: p99,
      [`serverCores${count}`]: serverCores,
      [`workerCores${count}`]: workerCores,
    });
    Object.assign(result.flags, throughput.flags);
    if (latency.capped) {
      const flag = `${latency.samples.length} samples (time cap)`;
      Object.assign(result.flags, { [p50Key]: flag, [p99Key]: flag });
    }
    result.notes.push(
      `${count} process${count === 1 ? '' : 'es'}: ${throughput.notes.join(', ')}; ${latency.samples.length} pickup samples`,
    );
  }
  return result;
}

/**
 * @param {string} key
 * @param {string} label
 * @returns {Row}
 */
function row(key, label, unit = 'tasks/s', higherIsBetter = true) {
  return { key, label, unit, higherIsBetter, section: 'main' };
}

/**
 * @param {string} key
 * @param {{ ms: number, done: number, capped: boolean }} result
 * @param {typeof FULL} s
 * @returns {CaseResult}
 */
function processResult(key, { ms, done, capped }, s) {
  return {
    figures: { [key]: rate(done, ms) },
    flags: capped
      ? { [key]: `${fmtInt(done)} of ${fmtInt(s.process)} done by the ${s.processCapMs / 1000} s cap` }
      : {},
    notes: [`${fmtInt(done)} tasks in ${Math.round(ms)} ms`],
  };
}

// ---------------------------------------------------------------------------------------------

/** Everything `npm run bench -- --help` says. */
const USAGE =
  `usage: npm run bench -- [--quick] [--only ${SELECTABLE.join(',')}] [--repeats N]\n` +
  '                        [--measures KEY,…] [--pin-seconds S]';

async function main() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      repeats: { type: 'string' },
      measures: { type: 'string' },
      'pin-seconds': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const scale = { ...(values.quick ? QUICK : FULL) };
  if (values.repeats !== undefined) {
    const repeats = Number(values.repeats);
    if (!Number.isInteger(repeats) || repeats < 1)
      throw new UsageError(`--repeats: expected a positive integer, got "${values.repeats}"`);
    scale.repeats = repeats;
  }
  if (values['pin-seconds'] !== undefined) {
    const seconds = Number(values['pin-seconds']);
    if (!Number.isFinite(seconds) || seconds <= 0)
      throw new UsageError(`--pin-seconds: expected a positive number, got "${values['pin-seconds']}"`);
    scale.pinned = { ...scale.pinned, pinS: seconds };
  }
  const caseKeys = defineCases(scale).map((kase) => kase.key);
  const measures = values.measures ? values.measures.split(',').map((key) => key.trim()) : caseKeys;
  for (const key of measures) {
    if (!caseKeys.includes(key))
      throw new UsageError(`--measures: expected some of ${caseKeys.join(', ')}, got "${key}"`);
  }
  const selected = values.only ? values.only.split(',').map((name) => name.trim()) : SELECTABLE;
  for (const name of selected) {
    if (!SELECTABLE.includes(name))
      throw new UsageError(`--only: expected some of ${SELECTABLE.join(', ')}, got "${name}"`);
  }

  const database = await openDatabase();
  const db = new pg.Pool({ connectionString: database.url, max: 3 });
  db.on('error', (error) => log(`bench pool: ${error.message}`));
  const startedAt = new Date();
  /** @type {any[]} */
  const runs = [];
  let broke = false;
  try {
    const server = (await db.query('SHOW server_version')).rows[0]?.server_version;
    const modules = await loadSubjects(selected.filter((name) => SUBJECTS.includes(name)));
    const pgbench = selected.includes('pgbench') ? await import('./pgbench.js') : undefined;
    const pgbenchVersion = pgbench ? await pgbench.pgbenchVersion() : undefined;

    printHeader({ database, server, scale, modules, pgbenchVersion, quick: values.quick, selected });
    const cases = defineCases(scale).filter((kase) => measures.includes(kase.key));

    for (const kase of cases) {
      /** Runs (subject/profile) that hit a time cap or failed: not repeated. */
      const done = new Set();
      for (let repeat = 1; repeat <= (kase.once ? 1 : scale.repeats); repeat++) {
        for (const module of modules) {
          if (kase.only && !kase.only.includes(module.name)) continue;
          for (const profile of module.profiles) {
            if (kase.profiles?.[module.name] && kase.profiles[module.name] !== profile.name) continue;
            const id = `${module.name}/${profile.name}`;
            if (done.has(id)) continue;
            const record = { case: kase.key, subject: module.name, profile: profile.name, repeat };
            const result = await runOne(module, profile, kase, scale, database.url, db);
            runs.push({ ...record, ...result });
            const shown = Object.entries(result.figures ?? {})
              .map(([key, value]) => `${key} ${fmtValue(value, unitOf(cases, key))}`)
              .join(', ');
            log(
              `${id} · ${kase.key} · run ${repeat}/${kase.once ? 1 : scale.repeats}: ${result.error ? `FAILED: ${result.error}` : shown}` +
                `${result.flags && Object.keys(result.flags).length ? ` (${Object.values(result.flags)[0]})` : ''}`,
            );
            if (result.error) {
              broke = true;
              done.add(id);
            } else if (result.flags && Object.keys(result.flags).length > 0) {
              // A time cap was hit: the figure is set by the peer's polling interval, not by noise.
              done.add(id);
            }
          }
        }
      }
    }

    if (pgbench) {
      if (!pgbenchVersion) {
        log('pgbench: not installed; references skipped (it ships with the PostgreSQL client packages)');
      } else {
        for (const kase of pgbench.cases) {
          for (let repeat = 1; repeat <= scale.repeats; repeat++) {
            const record = { case: kase.key, subject: 'pgbench', profile: kase.script, repeat };
            try {
              const result = await pgbench.runCase(kase, {
                url: database.url,
                db,
                seconds: scale.pgbenchSeconds,
                initialRows: scale.pgbenchInitialRows,
                log,
              });
              const flags = result.exhausted
                ? { [kase.key]: `ran out of ${fmtInt(result.filledRows)} rows` }
                : {};
              runs.push({
                ...record,
                figures: { [kase.key]: result.tasksPerSecond },
                flags,
                tps: result.tps,
              });
              log(
                `pgbench · ${kase.script} · run ${repeat}/${scale.repeats}: ${fmtInt(result.tasksPerSecond)} tasks/s (${result.tps.toFixed(0)} tps)`,
              );
            } catch (error) {
              broke = true;
              runs.push({ ...record, error: describe(error) });
              log(`pgbench · ${kase.script}: FAILED: ${describe(error)}`);
              break;
            }
          }
        }
      }
    }

    const rows = [
      ...cases.flatMap((kase) => kase.rows),
      ...(pgbench?.cases ?? []).map((kase) => ({
        ...row(kase.key, kase.label),
        section: /** @type {const} */ ('reference'),
      })),
    ];
    const summary = summarise(rows, runs);
    console.log('');
    printTable(rows, summary, modules);
    printReferences(rows, summary, scale);
    printProcesses(rows, summary, scale);
    printPinned(runs, scale);

    const file = await writeResults({
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      quick: values.quick,
      selected,
      measures,
      node: process.version,
      cpus: availableParallelism(),
      postgres: server,
      pgbench: pgbenchVersion ?? null,
      database: { source: database.source, url: redactUrl(database.url) },
      scale,
      subjects: Object.fromEntries(
        modules.map((module) => [
          module.name,
          module.profiles.map((profile) => ({ name: profile.name, settings: profile.describe })),
        ]),
      ),
      rows,
      summary,
      runs,
      strayErrors,
      broke: broke || strayErrors.length > 0,
    });
    console.log(`\nresults: ${file}`);
  } finally {
    await db.end();
    await database.stop();
  }
  return broke || strayErrors.length > 0 ? 1 : 0;
}

/**
 * Before a timed run: a VACUUM and a CHECKPOINT, so that no run pays for the dead
 * rows or the WAL of what came before it (an earlier run, a filled history), then
 * a pause. What the database role may not do is skipped.
 * @param {pg.Pool} db
 */
async function settle(db) {
  await db.query('VACUUM').catch(() => {});
  await db.query('CHECKPOINT').catch(() => {});
  await sleep(SETTLE_MS);
}

/**
 * One case on a fresh instance (and a fresh schema, dropped afterwards).
 * @param {any} module
 * @param {any} profile
 * @param {Case} kase
 * @param {typeof FULL} scale
 * @param {string} url
 * @param {pg.Pool} db
 */
async function runOne(module, profile, kase, scale, url, db) {
  /** @type {SubjectContext & { profile: any }} */
  const ctx = { url, db, profile, concurrency: kase.concurrency, log, settle: () => settle(db) };
  const subject = module.create(ctx);
  const started = now();
  /** @type {Partial<CaseResult> & { error?: string, ms?: number, settings?: unknown }} */
  let result = {};
  try {
    await subject.setup();
    result = { ...(await kase.run(subject, scale)), settings: subject.settings() };
  } catch (error) {
    result = { error: describe(error) };
  }
  try {
    await subject.teardown();
  } catch (error) {
    result.error ??= `teardown: ${describe(error)}`;
  }
  result.ms = Math.round(now() - started);
  return result;
}

/** @param {string[]} names */
async function loadSubjects(names) {
  const modules = [];
  // Imported on demand: `--only pgtq` runs without the peers installed.
  for (const name of names) modules.push(await import(`./subjects/${name}.js`));
  return modules;
}

/**
 * @returns {Promise<{ url: string, source: string, stop: () => Promise<void> }>}
 */
async function openDatabase() {
  for (const name of ['DATABASE_URL', 'PGTQ_TEST_DATABASE_URL']) {
    const url = process.env[name];
    if (url) return { url, source: name, stop: async () => {} };
  }
  log('no DATABASE_URL or PGTQ_TEST_DATABASE_URL: starting a throwaway PostgreSQL');
  const { startFallbackDatabase } = await import('../dist/dev/fallback-database.js');
  const fallback = await startFallbackDatabase();
  return { url: fallback.url, source: `${fallback.kind} fallback`, stop: () => fallback.stop() };
}

// ---------------------------------------------------------------------------------------------

/**
 * Median (min–max) per row and subject/profile, the best profile of each peer, and pgtq / best peer.
 * @param {Row[]} rows
 * @param {any[]} runs
 */
function summarise(rows, runs) {
  /** @type {Record<string, any>} */
  const summary = {};
  for (const { key, higherIsBetter } of rows) {
    /** @type {Record<string, any>} */
    const bySubject = {};
    for (const run of runs) {
      const value = run.figures?.[key];
      if (value === undefined) continue;
      const id = run.subject === 'pgbench' ? 'pgbench' : `${run.subject}/${run.profile}`;
      bySubject[id] ??= { values: [], flags: [] };
      bySubject[id].values.push(value);
      if (run.flags?.[key]) bySubject[id].flags.push(run.flags[key]);
    }
    for (const entry of Object.values(bySubject)) Object.assign(entry, summarize(entry.values));
    /** @type {Record<string, string>} */
    const best = {};
    for (const peer of PEERS) {
      const candidates = Object.entries(bySubject).filter(
        ([id, entry]) => id.startsWith(`${peer}/`) && entry.n > 0,
      );
      candidates.sort(([, a], [, b]) => (higherIsBetter ? b.median - a.median : a.median - b.median));
      if (candidates[0]) best[peer] = candidates[0][0];
    }
    const pgtq = bySubject['pgtq/default'];
    const bestPeers = Object.values(best).map((id) => bySubject[id]);
    bestPeers.sort((a, b) => (higherIsBetter ? b.median - a.median : a.median - b.median));
    const ratio = pgtq?.n > 0 && bestPeers[0] ? pgtq.median / bestPeers[0].median : undefined;
    summary[key] = { bySubject, best, ratio };
  }
  return summary;
}

/**
 * @param {Row[]} rows
 * @param {Record<string, any>} summary
 * @param {any[]} modules
 */
function printTable(rows, summary, modules) {
  const names = modules.map((module) => module.name);
  const columns = [
    'measure',
    'unit',
    ...SUBJECTS.filter((name) => names.includes(name)).map(columnTitle),
    'pgtq / best peer',
  ];
  /** @type {string[][]} */
  const lines = [];
  for (const r of rows.filter((entry) => entry.section === 'main')) {
    const { bySubject, best, ratio } = summary[r.key];
    if (Object.keys(bySubject).length === 0) continue;
    const cells = [r.label, `${r.unit} ${r.higherIsBetter ? '↑' : '↓'}`];
    for (const name of SUBJECTS.filter((subject) => names.includes(subject))) {
      if (name === 'pgtq') cells.push(cell(bySubject['pgtq/default'], r.unit));
      else
        cells.push(best[name] ? `${cell(bySubject[best[name]], r.unit)} [${best[name].split('/')[1]}]` : '');
    }
    cells.push(r.key === 'history' ? historyRatio(summary) : ratio === undefined ? '' : fmtRatio(ratio));
    lines.push(cells);
    // Each peer profile on its own line, so a best-of-profiles figure never hides the defaults.
    const profileLines = Math.max(0, ...PEERS.map((peer) => profilesOf(modules, peer).length));
    if (profileLines > 1) {
      for (let i = 0; i < profileLines; i++) {
        const sub = ['', ''];
        let any = false;
        for (const name of SUBJECTS.filter((subject) => names.includes(subject))) {
          const profile = PEERS.includes(name) ? profilesOf(modules, name)[i] : undefined;
          const entry = profile ? bySubject[`${name}/${profile}`] : undefined;
          if (entry?.n > 0) any = true;
          sub.push(entry?.n > 0 ? `  ${profile}: ${cell(entry, r.unit)}` : '');
        }
        sub.push('');
        if (any) lines.push(sub);
      }
    }
  }
  console.log(renderTable(columns, lines));
  const peers = PEERS.some((peer) => names.includes(peer));
  console.log(
    `\nmedian (min–max) over ${peers ? 'repeats; [profile] = the peer profile with the best median for that measure' : 'repeats'}.\n` +
      (peers
        ? '* = stopped at a time cap (the peer was waiting on its polling interval); that run is not repeated.\n' +
          '≥ = some delayed tasks had not started by the time cap: a lower bound.\n' +
          '↑ higher is better, ↓ lower is better; the ratio is pgtq / best peer either way.'
        : '↑ higher is better, ↓ lower is better.'),
  );
}

/** @param {any[]} modules @param {string} name @returns {string[]} */
function profilesOf(modules, name) {
  return modules.find((module) => module.name === name)?.profiles.map((/** @type {any} */ p) => p.name) ?? [];
}

/** @param {Record<string, any>} summary */
function historyRatio(summary) {
  const withHistory = summary.history?.bySubject['pgtq/default'];
  const empty = summary.historyEmpty?.bySubject['pgtq/default'];
  if (!(withHistory?.n > 0 && empty?.n > 0)) return '';
  return `${fmtRatio(withHistory.median / empty.median)} of empty`;
}

/**
 * @param {Row[]} rows
 * @param {Record<string, any>} summary
 * @param {typeof FULL} scale
 */
function printReferences(rows, summary, scale) {
  const references = rows.filter((r) => r.section === 'reference');
  const lines = [];
  for (const r of references) {
    const entry = Object.values(summary[r.key].bySubject)[0];
    if (!entry) continue;
    lines.push([r.label, cell(entry, r.unit), ...(entry.flags.length ? [entry.flags[0]] : [''])]);
  }
  if (lines.length === 0) return;
  const library = summary[`process${scale.concurrencies.at(-1)}`]?.bySubject['pgtq/default'];
  const bare = summary.bareSql?.bySubject['pgtq/default'];
  console.log('\nreferences: the same server without a queue library');
  console.log(renderTable(['reference', 'tasks/s', 'note'], lines));
  if (library?.n > 0 && bare?.n > 0) {
    console.log(
      `pgtq at c = ${scale.concurrencies.at(-1)} reaches ${((library.median / bare.median) * 100).toFixed(0)} % ` +
        'of its own claim + finish SQL run bare.',
    );
  }
}

/**
 * The processes measure's CPU figures, beside its throughput: cores busy = CPU seconds over wall
 * seconds of the timed throughput run. Where the two together reach the machine's CPU count, more
 * worker processes only share the same cores; the server's part of them is what PostgreSQL needs.
 * @param {Row[]} rows
 * @param {Record<string, any>} summary
 * @param {typeof FULL} scale
 */
function printProcesses(rows, summary, scale) {
  const pgtq = (/** @type {string} */ key) => summary[key]?.bySubject['pgtq/default'];
  const counts = scale.processes.counts.filter((count) => pgtq(`processes${count}`)?.n > 0);
  if (counts.length === 0) return;
  const cpus = availableParallelism();
  const label = (/** @type {string} */ key) => rows.find((r) => r.key === key)?.label ?? key;
  console.log(
    `\nworker processes × c = ${scale.processes.concurrency}: CPU during the throughput run, in cores busy ` +
      `(CPU seconds / wall seconds; this machine has ${cpus})`,
  );
  const lines = counts.map((count) => [
    label(`processes${count}`).replace(/.*, /, ''),
    cell(pgtq(`processes${count}`), 'tasks/s'),
    cell(pgtq(`serverCores${count}`), 'cores'),
    cell(pgtq(`workerCores${count}`), 'cores'),
    fmtShare(
      (pgtq(`serverCores${count}`)?.median ?? Number.NaN) +
        (pgtq(`workerCores${count}`)?.median ?? Number.NaN),
      cpus,
    ),
  ]);
  console.log(
    renderTable(['processes', 'tasks/s', 'PostgreSQL server', 'worker processes', 'machine busy'], lines),
  );
  // The first count at which the machine is (nearly) all busy: from there on the server's share is the limit.
  const busy = counts.find(
    (count) =>
      (pgtq(`serverCores${count}`)?.median ?? 0) + (pgtq(`workerCores${count}`)?.median ?? 0) >= 0.9 * cpus,
  );
  const server = busy === undefined ? undefined : pgtq(`serverCores${busy}`)?.median;
  console.log(
    'PostgreSQL server = every `postgres` process on this machine (its backends, WAL writer, checkpointer, ' +
      "autovacuum), including the bench's own polls and whatever else the server ran meanwhile; " +
      'machine busy = the two together (the bench process, which only polls, is left out).\n' +
      (busy === undefined || server === undefined
        ? `The CPUs were not all busy at any count (≥ 90 % of ${cpus}): neither side ran out of cores.`
        : `The ${cpus} CPUs are first busy (≥ 90 %) at ${busy} worker process${busy === 1 ? '' : 'es'}, ` +
          `PostgreSQL taking ${fmtValue(server, 'cores')} of them: beyond that, more processes share the same cores.`),
  );
}

/** Busy cores as a share of the machine's. @param {number} cores @param {number} cpus */
function fmtShare(cores, cpus) {
  return Number.isFinite(cores) ? `${Math.round((cores / cpus) * 100)} %` : '–';
}

/**
 * The pinned-horizon measure: one table per subject, a column per phase.
 * @param {any[]} runs
 * @param {typeof FULL} scale
 */
function printPinned(runs, scale) {
  const pinnedRuns = runs.filter((run) => run.case === 'pinned' && run.pinned);
  if (pinnedRuns.length === 0) return;
  const p = scale.pinned;
  console.log(
    `\npinned horizon: ${fmtInt(p.rate)} tasks/s offered, c = ${p.concurrency}, no-op tasks; ` +
      `${p.beforeS} s before, ${p.pinS} s with a REPEATABLE READ transaction held open, ${p.afterS} s after its COMMIT`,
  );
  const mb = (/** @type {number | null} */ bytes) => (bytes === null ? '' : (bytes / 2 ** 20).toFixed(1));
  /** @type {[string, (phase: any) => string][]} */
  const lines = [
    ['pushed, tasks/s', (ph) => fmtInt(ph.pushedPerS)],
    ['handled, tasks/s', (ph) => fmtInt(ph.handledPerS)],
    [
      'pickup p50 / p99, ms',
      // ≥: some of the phase's tasks had not started by the drain cap, so these are lower bounds.
      (ph) =>
        `${ph.notStarted > 0 ? '≥' : ''}${fmtValue(ph.pickupP50Ms, 'ms')} / ${fmtValue(ph.pickupP99Ms, 'ms')}`,
    ],
    ['backlog at the end (unfinished)', (ph) => fmtInt(ph.backlog)],
    ['dead tuples (n_dead_tup), last sample', (ph) => (ph.deadTuples === null ? '' : fmtInt(ph.deadTuples))],
    ['vacuums of the hot tables since the start', (ph) => (ph.vacuums === null ? '' : fmtInt(ph.vacuums))],
    ['hot table size, MB, last sample', (ph) => mb(ph.bytes)],
    [
      'claim probe ms (buffers), last sample',
      (ph) => (ph.claimMs === null ? '' : `${ph.claimMs.toFixed(2)} (${fmtInt(ph.claimBuffers)})`),
    ],
    ['claim probe ms, mean of the phase', (ph) => (ph.claimMsMean === null ? '' : ph.claimMsMean.toFixed(2))],
    [
      'finish probe ms (buffers), last sample',
      (ph) => (ph.finishMs === null ? '' : `${ph.finishMs.toFixed(2)} (${fmtInt(ph.finishBuffers)})`),
    ],
    [
      'finish probe ms, mean of the phase',
      (ph) => (ph.finishMsMean === null ? '' : ph.finishMsMean.toFixed(2)),
    ],
  ];
  for (const run of pinnedRuns) {
    const phases = run.pinned.phases;
    const pinnedPhase = phases.find((/** @type {any} */ ph) => ph.name === 'pinned');
    console.log(
      `\n${run.subject} [${run.profile}]: ${run.pinned.tables.join(', ')}` +
        (pinnedPhase ? `; backend_xmin held at ${pinnedPhase.pinnedXmin}` : ''),
    );
    console.log(
      renderTable(
        ['', ...phases.map((/** @type {any} */ ph) => (ph.name === 'pinned' ? 'end of pin' : ph.name))],
        lines.map(([label, show]) => [label, ...phases.map(show)]),
      ),
    );
    const late = phases.reduce((/** @type {number} */ sum, /** @type {any} */ ph) => sum + ph.notStarted, 0);
    if (late > 0)
      console.log(
        `≥: ${fmtInt(late)} pushed tasks had not started by the drain cap (counted as starting then: lower bounds)`,
      );
  }
  for (const run of runs.filter((r) => r.case === 'pinned' && r.error))
    console.log(`\n${run.subject} [${run.profile}]: FAILED: ${run.error}`);
}

/** @param {string} name */
function columnTitle(name) {
  return PEERS.includes(name) ? `${name} (best profile)` : name;
}

/**
 * @param {any} entry
 * @param {string} unit
 */
function cell(entry, unit) {
  if (!entry) return '';
  if (entry.n === 0) return '';
  const mark = entry.flags.length > 0 ? (entry.flags[0].startsWith('≥') ? '≥' : '*') : '';
  const value = `${mark === '≥' ? '≥' : ''}${fmtValue(entry.median, unit)}`;
  const range = entry.n > 1 ? ` (${fmtValue(entry.min, unit)}–${fmtValue(entry.max, unit)})` : '';
  return `${value}${range}${mark === '*' ? ' *' : ''}`;
}

/**
 * @param {string[]} columns
 * @param {string[][]} lines
 */
function renderTable(columns, lines) {
  const widths = columns.map((column, i) =>
    Math.max(column.length, ...lines.map((line) => (line[i] ?? '').length)),
  );
  const format = (/** @type {string[]} */ cells) =>
    cells
      .map((text, i) => (i === 0 ? text.padEnd(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0)))
      .join(' │ ')
      .trimEnd();
  const rule = widths.map((width) => '─'.repeat(width)).join('─┼─');
  return [format(columns), rule, ...lines.map(format)].join('\n');
}

// ---------------------------------------------------------------------------------------------

/**
 * @param {{ database: { url: string, source: string }, server: string, scale: typeof FULL, modules: any[],
 *   pgbenchVersion: string | undefined, quick: boolean | undefined, selected: string[] }} options
 */
function printHeader({ database, server, scale, modules, pgbenchVersion, quick, selected }) {
  console.log(`pgtq bench${quick ? ' --quick' : ''}: ${selected.join(', ')}`);
  console.log(
    `PostgreSQL ${server} (${database.source}: ${redactUrl(database.url)}), Node ${process.version}, ` +
      `${availableParallelism()} CPUs${selected.includes('pgbench') ? `, ${pgbenchVersion ?? 'no pgbench'}` : ''}`,
  );
  console.log(
    `repeats ${scale.repeats}; enqueue N = ${fmtInt(scale.enqueueOne)} one at a time, ${fmtInt(scale.enqueueBulk)} in bulk; ` +
      `process N = ${fmtInt(scale.process)} at c = ${scale.concurrencies.join(', ')} (cap ${scale.processCapMs / 1000} s); ` +
      `latency ${scale.latencySamples} pushes ${scale.latencyPauseMs} ms apart (cap ${scale.latencyCapMs / 1000} s); ` +
      `lateness ${scale.latenessCount} tasks due in ${scale.latenessAheadMs} ms; ` +
      `worker processes ${scale.processes.counts.join(', ')} × c = ${scale.processes.concurrency}`,
  );
  console.log('settings (c = concurrency; every case runs on a fresh schema, dropped afterwards):');
  for (const module of modules) {
    for (const profile of module.profiles)
      console.log(`  ${module.name} [${profile.name}]: ${profile.describe}`);
  }
  console.log('');
}

/** @param {Record<string, unknown>} results */
async function writeResults(results) {
  const dir = new URL('./results/', import.meta.url);
  await mkdir(dir, { recursive: true });
  const stamp = String(results.startedAt).replace(/[:.]/g, '-');
  const file = new URL(`${stamp}${results.quick ? '-quick' : ''}.json`, dir);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return file.pathname;
}

// ---------------------------------------------------------------------------------------------

/** Two decimals, or two significant digits for a ratio below 0.1 (0.0042×, not 0.00×). @param {number} value */
function fmtRatio(value) {
  return `${value < 0.1 ? value.toPrecision(2) : value.toFixed(2)}×`;
}

/** @param {number} value */
function fmtInt(value) {
  return Math.round(value).toLocaleString('en-US');
}

/** @param {number} value @param {string} unit */
function fmtValue(value, unit) {
  if (!Number.isFinite(value)) return '–';
  if (unit === 'cores') return value.toFixed(2);
  if (unit === 'ms') return Math.abs(value) >= 100 ? fmtInt(value) : value.toFixed(1);
  return Math.abs(value) >= 100 ? fmtInt(value) : value.toFixed(1);
}

/** @param {Case[]} cases @param {string} key */
function unitOf(cases, key) {
  return cases.flatMap((kase) => kase.rows).find((r) => r.key === key)?.unit ?? '';
}

/** @param {unknown} error */
function describe(error) {
  return error instanceof Error ? error.message : String(error);
}

/** @param {string} line */
function log(line) {
  process.stderr.write(`${line}\n`);
}

class UsageError extends Error {}

/**
 * Errors no case awaited (a library failing in the background after its instance stopped): logged,
 * counted as "something broke", and the run carries on to print what it measured.
 * @type {string[]}
 */
const strayErrors = [];
for (const event of /** @type {const} */ (['unhandledRejection', 'uncaughtException'])) {
  process.on(event, (error) => {
    strayErrors.push(describe(error));
    log(`${event}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  });
}

// Nothing is forced to exit: every pool, worker and server is closed, so the process ends by itself.
main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    if (error instanceof UsageError) {
      log(`${error.message}\n${USAGE}`);
      process.exitCode = 2;
      return;
    }
    log(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);

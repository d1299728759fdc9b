/**
 * The verdict of a run, read from the database after the drain: the invariants
 * ("nothing lost, nothing done twice, nothing left behind") and the figures.
 */
import { countLines, linesFrom, succeededAt } from './logs.mjs';

/**
 * @typedef {{ name: string, ok: boolean, detail: string }} Check
 * @typedef {import('./supervisor.mjs').UnexpectedExit} UnexpectedExit
 */

const fmt = (n) => n.toLocaleString('en-US');
const seconds = (ms) => (ms === null || ms === undefined ? 'n/a' : `${(ms / 1000).toFixed(1)} s`);

/**
 * @param {{ admin: import('./admin.mjs').Admin, tally: import('./producers.mjs').Tally,
 *   faults: import('./faults.mjs').Faults, workers: import('./supervisor.mjs').Supervised[],
 *   unexpectedExits: UnexpectedExit[], terminations: { name: string, code: number | null,
 *   signal: string | null, hung: boolean, ms: number, tail: string[] }[],
 *   drain: { ok: boolean, ms: number, left: string }, faultMs: number, totalMs: number,
 *   longestOverdueMs: number }} run
 */
export async function judge(run) {
  const { admin, tally, faults } = run;
  /** @type {Check[]} */
  const checks = [];
  const check = (name, ok, detail = '') => checks.push({ name, ok, detail });
  const list = (ids, max = 10) => (ids.length > max ? `${ids.slice(0, max).join(', ')}, …` : ids.join(', '));

  const [counts] = await admin.rows(`
    WITH per_push AS (
      SELECT p.logical_id, count(e.logical_id) AS n
      FROM chaos.pushes AS p LEFT JOIN chaos.effects AS e USING (logical_id)
      GROUP BY p.logical_id
    )
    SELECT
      (SELECT count(*) FROM chaos.pushes)::int AS committed,
      (SELECT count(*) FROM chaos.pushes WHERE via = 'api')::int AS via_api,
      (SELECT count(*) FROM chaos.pushes WHERE via = 'sql')::int AS via_sql,
      (SELECT count(*) FROM chaos.pushes WHERE delay_ms > 0)::int AS delayed,
      (SELECT count(*) FROM chaos.pushes WHERE fail_first)::int AS fail_first,
      (SELECT count(*) FROM chaos.effects)::int AS effects,
      (SELECT count(*) FROM per_push WHERE n = 0)::int AS lost,
      (SELECT count(*) FROM per_push WHERE n > 1)::int AS duplicated,
      (SELECT coalesce(sum(n - 1), 0) FROM per_push WHERE n > 1)::int AS extra_effects,
      (SELECT count(*) FROM chaos.effects AS e
        WHERE NOT EXISTS (SELECT FROM chaos.pushes AS p WHERE p.logical_id = e.logical_id))::int AS phantom,
      (SELECT count(*) FROM chaos.effects AS e JOIN chaos.pushes AS p USING (logical_id)
        WHERE e.task_id <> p.task_id)::int AS wrong_task,
      (SELECT count(*) FROM chaos.effects AS e JOIN pgtq.finished_tasks AS f ON f.id = e.task_id
        WHERE e.attempt <> f.attempts)::int AS stale_attempt,
      (SELECT count(*) FROM chaos.orders AS o FULL JOIN chaos.pushes AS p USING (logical_id)
        WHERE o.logical_id IS NULL OR p.logical_id IS NULL)::int AS torn,
      (SELECT count(*) FROM pgtq.all_tasks AS t
        WHERE NOT EXISTS (SELECT FROM chaos.pushes AS p WHERE p.task_id = t.id))::int AS orphan_tasks,
      (SELECT count(*) FROM chaos.pushes AS p WHERE NOT EXISTS (
        SELECT FROM pgtq.finished_tasks AS f WHERE f.id = p.task_id AND f.state = 'succeeded'))::int AS unfinished,
      (SELECT count(*) FROM pgtq.tasks)::int AS pending,
      (SELECT count(*) FROM pgtq.finished_tasks WHERE state = 'failed')::int AS failed,
      (SELECT count(*) FROM pgtq.finished_tasks WHERE state = 'cancelled')::int AS cancelled,
      (SELECT coalesce(max(attempts), 0) FROM pgtq.finished_tasks)::int AS max_attempts,
      (SELECT coalesce(sum(attempts - 1), 0) FROM pgtq.finished_tasks)::int AS extra_attempts
  `);

  const idsIn = (sql, ids) => admin.rows(sql, [[...ids]]).then((rows) => rows.map((row) => row.id));
  const committedMissing = await idsIn(
    `SELECT w.id FROM unnest($1::text[]) AS w(id)
     WHERE NOT EXISTS (SELECT FROM chaos.pushes AS p WHERE p.logical_id = w.id)`,
    tally.committed,
  );
  const notCommittedFound = await idsIn(
    `SELECT w.id FROM unnest($1::text[]) AS w(id)
     WHERE EXISTS (SELECT FROM chaos.pushes AS p WHERE p.logical_id = w.id)
        OR EXISTS (SELECT FROM chaos.effects AS e WHERE e.logical_id = w.id)
        OR EXISTS (SELECT FROM pgtq.all_tasks AS t WHERE t.args ->> 0 = w.id)`,
    [...tally.rolledBack, ...tally.aborted],
  );
  const unknownCommitted = await idsIn(
    'SELECT logical_id AS id FROM chaos.pushes WHERE logical_id = ANY ($1::text[])',
    tally.unknown,
  );

  check(
    'every acknowledged COMMIT is in the database',
    committedMissing.length === 0,
    list(committedMissing),
  );
  check(
    'no rolled-back or aborted push left a push row, a task or an effect',
    notCommittedFound.length === 0,
    list(notCommittedFound),
  );
  check('business row and push row exist together or not at all', counts.torn === 0, `${counts.torn} torn`);
  check('no task exists without its committed push', counts.orphan_tasks === 0, `${counts.orphan_tasks}`);
  check('every committed push has an effect (nothing lost)', counts.lost === 0, `${counts.lost} lost`);
  check(
    'no committed push has more than one effect (nothing done twice)',
    counts.duplicated === 0,
    `${counts.duplicated} pushes with ${counts.extra_effects} extra effects`,
  );
  check('no effect without a committed push', counts.phantom === 0, `${counts.phantom}`);
  check('each effect belongs to its push’s task', counts.wrong_task === 0, `${counts.wrong_task}`);
  check(
    'each effect was written by its task’s last attempt (no stale attempt committed)',
    counts.stale_attempt === 0,
    `${counts.stale_attempt}`,
  );
  check('every committed push’s task succeeded', counts.unfinished === 0, `${counts.unfinished}`);
  check('nothing left scheduled, ready or running', counts.pending === 0, `${counts.pending} in pgtq.tasks`);
  check('no task failed or was cancelled', counts.failed + counts.cancelled === 0, `${counts.failed} failed`);
  check('the queue drained after the faults stopped', run.drain.ok, run.drain.left);
  check('producers met no error but lost connections', tally.errors.length === 0, tally.errors.join('; '));
  check(
    'no worker or scheduler exited on its own',
    run.unexpectedExits.length === 0,
    `${run.unexpectedExits.length} exits`,
  );
  const unclean = (stops) => stops.filter((t) => t.code !== 0 || t.hung);
  const describeStops = (stops) =>
    stops
      .map((t) => `${t.name}: ${t.hung ? 'hung' : `exit ${t.code ?? t.signal}`} ${t.cause ?? ''}`)
      .join('; ');
  check(
    'every process exited 0 on SIGTERM within its grace period at the end',
    unclean(run.terminations).length === 0,
    describeStops(unclean(run.terminations)),
  );
  check(
    'every worker restarted with SIGTERM amid the faults exited 0 within its grace period',
    unclean(faults.gracefulStops).length === 0,
    describeStops(unclean(faults.gracefulStops)),
  );
  check(
    'PostgreSQL was crash-restarted and work resumed',
    faults.restarts.length > 0 && faults.restarts.every((r) => r.firstCompletionAt),
  );

  // Tasks of killed workers: from the kill to the moment another worker reported them done.
  const files = run.workers.map((w) => w.logFile);
  const doneAt = succeededAt(files);
  let longestKilledWaitMs = null;
  let longestKilledTask = '';
  let killedTasks = 0;
  for (const kill of faults.kills) {
    for (const id of kill.held) {
      killedTasks++;
      const at = doneAt.get(id);
      if (at !== undefined && at - kill.at > (longestKilledWaitMs ?? -1)) {
        longestKilledWaitMs = at - kill.at;
        longestKilledTask = id;
      }
    }
  }
  const [longest] = longestKilledTask
    ? await admin.rows('SELECT attempts FROM pgtq.finished_tasks WHERE id = $1', [longestKilledTask])
    : [];

  // A stopped worker's tasks: finished by another worker after the rescue, its own late
  // outcomes refused. "By itself": its finishing statement had run when it froze, so the
  // row stayed locked, the rescuer skipped it, and its COMMIT went through on SIGCONT.
  const sigstops = [];
  for (const stop of faults.sigstops) {
    const [row] = await admin.rows(
      `SELECT count(DISTINCT task_id) FILTER (WHERE worker_pid <> $2)::int AS elsewhere,
              count(DISTINCT task_id) FILTER (WHERE worker_pid = $2)::int AS itself
       FROM chaos.effects WHERE task_id = ANY ($1::bigint[])`,
      [stop.held, stop.pid],
    );
    const worker = run.workers.find((w) => w.name === stop.name);
    const after = worker ? linesFrom(worker.logFile, stop.logOffset) : [];
    sigstops.push({
      ...stop,
      elsewhere: row?.elsewhere ?? 0,
      itself: row?.itself ?? 0,
      leaseLost: after.filter((line) => /lease lost/.test(line)).length,
    });
  }

  const restart = faults.restarts[0];
  const terminated = faults.storms.reduce((sum, storm) => sum + storm.terminated, 0);
  const figures = [
    ['duration (faults / whole run)', `${seconds(run.faultMs)} / ${seconds(run.totalMs)}`],
    ['pushes attempted', fmt(tally.attempted)],
    ['committed (API / SQL)', `${fmt(counts.committed)} (${fmt(counts.via_api)} / ${fmt(counts.via_sql)})`],
    [
      '  of which delayed / failing their first attempt',
      `${fmt(counts.delayed)} / ${fmt(counts.fail_first)}`,
    ],
    ['rolled back on purpose', fmt(tally.rolledBack.size)],
    ['aborted by a fault before COMMIT', fmt(tally.aborted.size)],
    [
      'COMMIT outcome unknown → found committed',
      `${fmt(tally.unknown.size)} → ${fmt(unknownCommitted.length)}`,
    ],
    ['effects', fmt(counts.effects)],
    ['duplicates', fmt(counts.extra_effects)],
    ['lost', fmt(counts.lost)],
    ['failed tasks', fmt(counts.failed)],
    ['attempts beyond the first (retries, rescues)', fmt(counts.extra_attempts)],
    ['most attempts of one task', fmt(counts.max_attempts)],
    ['worker SIGKILLs (tasks they held)', `${faults.kills.length} (${fmt(killedTasks)})`],
    [
      'longest wait of a killed worker’s task, kill → done elsewhere',
      longestKilledTask
        ? `${seconds(longestKilledWaitMs)} (task ${longestKilledTask}, ${longest?.attempts} attempts)`
        : 'n/a',
    ],
    [
      'graceful restarts amid the faults (exit 0 in time; slowest)',
      `${faults.gracefulStops.length} (${faults.gracefulStops.length - unclean(faults.gracefulStops).length}; ${seconds(Math.max(0, ...faults.gracefulStops.map((t) => t.ms)))})`,
    ],
    ['termination storms (backends terminated)', `${faults.storms.length} (${fmt(terminated)})`],
    ...sigstops.map((s, i) => [
      `SIGSTOP #${i + 1} (${seconds(s.resumedAt - s.stoppedAt)}): tasks held → done elsewhere / by itself`,
      `${s.held.length} → ${s.elsewhere} / ${s.itself}; ${s.leaseLost} late outcomes refused ('lease lost')`,
    ]),
    ['PostgreSQL crash-restarts', fmt(faults.restarts.length)],
    [
      'crash → accepting connections → next task completed',
      restart
        ? `${seconds(restart.readyAt - restart.crashAt)} → ${seconds(
            restart.firstCompletionAt && restart.firstCompletionAt - restart.crashAt,
          )}`
        : 'n/a',
    ],
    ['longest a due task waited for its scheduler', seconds(run.longestOverdueMs)],
    ['producer reconnects', fmt(tally.reconnects)],
    ["'lease lost' lines in worker logs", fmt(countLines(files, /lease lost/))],
    ['drain after the faults', seconds(run.drain.ms)],
    ['unexpected exits', fmt(run.unexpectedExits.length)],
  ];
  return { checks, figures, ok: checks.every((c) => c.ok) };
}

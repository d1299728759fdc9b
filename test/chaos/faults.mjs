/**
 * The faults, each on its own clock:
 * - SIGKILL a random worker every few seconds, and start it again at once;
 * - terminate every backend but the suite's own, every few seconds;
 * - SIGSTOP a worker for longer than its lease, then SIGCONT it;
 * - crash-restart PostgreSQL (`pg_ctl restart -m immediate`) once, half way;
 * - now and then restart a worker gracefully, as a deployment does: SIGTERM, which
 *   must end in exit code 0 within the grace period even amid the other faults.
 * A lock keeps a kill and its restart, a storm and the crash from overlapping; a
 * worker under SIGSTOP or SIGTERM is left alone by the others meanwhile. Each fault
 * records what it did, and what the workers held when it struck, for the verdict.
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ADMIN_APPLICATION, applicationName } from './admin.mjs';

const between = (min, max) => min + Math.random() * (max - min);
const pick = (list) => list[Math.floor(Math.random() * list.length)];

/** Tasks a worker process holds (running, or claimed ahead), read from the database. */
async function heldBy(admin, pid) {
  return admin.rows(`SELECT id::text AS id FROM pgtq.tasks WHERE state = 'running' AND worker_id LIKE $1`, [
    `${hostname()}:${pid}:%`,
  ]);
}

export class Faults {
  /** @type {{ pid: number, at: number, held: string[] }[]} */
  kills = [];
  /** @type {{ at: number, terminated: number }[]} */
  storms = [];
  /** @type {{ name: string, pid: number, held: string[], stoppedAt: number, resumedAt: number, logOffset: number }[]} */
  sigstops = [];
  /** @type {{ crashAt: number, readyAt: number, firstCompletionAt: number | null }[]} */
  restarts = [];
  /** @type {{ name: string, pid: number, code: number | null, signal: string | null, hung: boolean, ms: number, cause: string }[]} */
  gracefulStops = [];
  #lock = Promise.resolve();
  #loops = [];
  /** SIGCONTs to come, and the watcher of the recovery after the crash: awaited by `stop()`. */
  #pending = [];
  #stop = new AbortController();
  #options;
  /** Workers under SIGSTOP. */
  #stopped = new Set();
  /** Workers being stopped with SIGTERM. */
  #terminating = new Set();

  /**
   * @param {{ admin: import('./admin.mjs').Admin, cluster: import('./cluster.mjs').Cluster,
   *   workers: import('./supervisor.mjs').Supervised[], seconds: number, leaseMs: number,
   *   rescueIntervalMs: number, stopTimeoutMs: number }} options
   */
  constructor(options) {
    this.#options = options;
  }

  start() {
    const { seconds, leaseMs, rescueIntervalMs } = this.#options;
    const startedAt = Date.now();
    const until = startedAt + seconds * 1000;
    this.#loops.push(
      this.#every(
        () => between(2500, 4500),
        () => this.#killOne(),
      ),
      this.#every(
        () => between(3500, 6500),
        () => this.#storm(),
      ),
      this.#at(startedAt + seconds * 500, () => this.#restartPostgres()),
      // Not under the lock: other faults strike while the worker shuts down.
      this.#every(
        () => between(12_000, 20_000),
        () => this.#restartGracefully(),
        false,
      ),
    );
    // Long enough for the lease to expire, the rescuer to see it and another worker to finish the task.
    const stopMs = leaseMs + rescueIntervalMs + 3000;
    for (let at = startedAt + seconds * 200; at + stopMs < until - 2000; at += 60_000) {
      this.#loops.push(this.#at(at, () => this.#stopAndContinue(stopMs)));
    }
  }

  /** Stops every fault and waits for the one under way; stopped workers are continued. */
  async stop() {
    this.#stop.abort();
    await Promise.allSettled(this.#loops);
    await this.#lock;
    await Promise.allSettled(this.#pending);
  }

  /** Runs `fault` every `nextMs()` ms until stopped. */
  async #every(nextMs, fault, exclusive = true) {
    while (!this.#stop.signal.aborted) {
      const slept = await sleep(nextMs(), true, { signal: this.#stop.signal }).catch(() => false);
      if (!slept) return;
      await (exclusive ? this.#exclusive(fault) : fault());
    }
  }

  /** Runs `fault` once at `time`, unless stopped first. */
  async #at(time, fault) {
    const slept = await sleep(Math.max(0, time - Date.now()), true, { signal: this.#stop.signal }).catch(
      () => false,
    );
    if (slept) await this.#exclusive(fault);
  }

  #exclusive(fault) {
    const run = this.#lock.then(fault);
    this.#lock = run.catch(() => {});
    return run;
  }

  /** Workers running and not under another fault. */
  #free() {
    return this.#options.workers.filter(
      (w) => w.running && !this.#stopped.has(w) && !this.#terminating.has(w),
    );
  }

  async #killOne() {
    const victim = pick(this.#free());
    if (!victim?.pid) return;
    const pid = victim.pid;
    const held = await heldBy(this.#options.admin, pid);
    const at = Date.now();
    await victim.kill();
    this.kills.push({ pid, at, held: held.map((row) => row.id) });
    // Under the lock until it is up: a worker that cannot reach the database exits at start-up.
    await victim.startAndWait();
  }

  /**
   * Terminates every connection but the suite's own, and those of a worker under
   * SIGSTOP: its transactions must stay open, so that when it wakes up its late
   * completions reach the server and are refused there by the lease fence.
   */
  async #storm() {
    const spared = [ADMIN_APPLICATION, ...[...this.#stopped].map((w) => applicationName(w.name))];
    const [row] = await this.#options.admin.rows(
      `SELECT count(pg_terminate_backend(pid))::int AS terminated FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
         AND datname = current_database() AND NOT (application_name = ANY ($1::text[]))`,
      [spared],
    );
    this.storms.push({ at: Date.now(), terminated: row?.terminated ?? 0 });
  }

  /**
   * SIGSTOPs the worker holding the most tasks, for `stopMs`; the other faults go on
   * while it sleeps. A worker frozen holding nothing would test nothing: it is
   * continued at once and another moment tried, for up to 10 s.
   */
  async #stopAndContinue(stopMs) {
    const { admin } = this.#options;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !this.#stop.signal.aborted) {
      const holding = await admin.rows(
        `SELECT split_part(worker_id, ':', 2) AS pid, count(*)::int AS n FROM pgtq.tasks
         WHERE state = 'running' GROUP BY 1 ORDER BY n DESC`,
      );
      const candidates = this.#free().filter((w) => w.ready);
      const victim = holding.map((row) => candidates.find((w) => String(w.pid) === row.pid)).find(Boolean);
      if (victim?.pid) {
        const pid = victim.pid;
        this.#stopped.add(victim);
        victim.signal('SIGSTOP');
        const stoppedAt = Date.now();
        // Read once the process is frozen and what it had sent has run: what it holds now stays held.
        await sleep(200);
        const held = (await heldBy(admin, pid)).map((row) => row.id);
        if (held.length > 0) {
          const record = { name: victim.name, pid, held, stoppedAt, resumedAt: 0, logOffset: 0 };
          this.sigstops.push(record);
          this.#pending.push(
            sleep(stopMs).then(() => {
              record.logOffset = victim.logOffset();
              record.resumedAt = Date.now();
              victim.signal('SIGCONT');
              this.#stopped.delete(victim);
            }),
          );
          return;
        }
        victim.signal('SIGCONT');
        this.#stopped.delete(victim);
      }
      await sleep(100);
    }
  }

  async #restartPostgres() {
    const { cluster, admin } = this.#options;
    // A crash would end a stopped worker's transactions, and with them the test of its late completions.
    while (this.#stopped.size > 0) await sleep(100);
    const crashAt = Date.now();
    await cluster.restartImmediate();
    const record = { crashAt, readyAt: Date.now(), firstCompletionAt: null };
    this.restarts.push(record);
    // How long until work flows again: the first task finished by a transaction begun after the crash.
    const watch = async () => {
      while (Date.now() - crashAt < 120_000) {
        const done = await admin.number(
          'SELECT count(*) FROM pgtq.finished_tasks WHERE finished_at > to_timestamp($1::double precision / 1000)',
          [crashAt],
        );
        if (done > 0) {
          record.firstCompletionAt = Date.now();
          return;
        }
        await sleep(50);
      }
    };
    this.#pending.push(watch());
  }

  /**
   * SIGTERM, as a deployment would; the worker must exit 0 in time. Then it starts
   * again. Only a worker past start-up: before it has set up its signal handlers, a
   * SIGTERM ends any Node.js process by the signal, with nothing claimed yet.
   */
  async #restartGracefully() {
    const victim = pick(this.#free().filter((w) => w.ready));
    if (!victim?.pid) return;
    const pid = victim.pid;
    this.#terminating.add(victim);
    try {
      const { code, signal, hung, ms, cause } = await victim.terminate(this.#options.stopTimeoutMs);
      this.gracefulStops.push({ name: victim.name, pid, code, signal, hung, ms, cause });
      // Under the lock: a worker that cannot reach the database exits at start-up, so not during the crash.
      await this.#exclusive(() => victim.startAndWait());
    } finally {
      this.#terminating.delete(victim);
    }
  }
}

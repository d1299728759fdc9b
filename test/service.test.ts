import { createServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { PgTq, runScheduler, runWorker } from '../src/index.js';
import { Lifecycle, PeriodicService } from '../src/service.js';
import { waitFor } from './helpers/database.js';
import { useTestSchema } from './helpers/queue.js';
import { gate } from './helpers/services.js';

const db = await useTestSchema('pgtq_service');

/** A periodic service whose passes are counted, and held open while `hold` is closed. */
class Counting extends PeriodicService {
  passes = 0;
  hold: Promise<void> = Promise.resolve();
  fail = false;
  errors: number[] = [];
  constructor(intervalMs: number, runAtStart = true) {
    super({
      name: 'counting',
      intervalMs: () => intervalMs,
      onError: (_error, failures) => this.errors.push(failures),
      runAtStart,
    });
  }
  protected override async pass(): Promise<void> {
    this.passes++;
    await this.hold;
    if (this.fail) throw new Error('pass failed');
  }
}

describe('PeriodicService', () => {
  it('coalesces wake-ups during a pass into one more pass, and stop() waits for the pass under way', async () => {
    const service = new Counting(60_000);
    const held = gate();
    service.hold = held.closed;
    await service.start();
    expect(service.passes).toBe(1);
    for (let i = 0; i < 5; i++) service.wake();
    held.open();
    await waitFor(() => service.passes === 2);
    let stopped = false;
    const second = gate();
    service.hold = second.closed;
    service.wake();
    const stopping = service.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stopped).toBe(false); // the third pass is still running
    second.open();
    await stopping;
    expect(service.passes).toBe(3);
    service.wake();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(service.passes).toBe(3); // nothing runs after stop
    expect(service.state).toBe('stopped');
  });

  it('runs at its interval, or first after one interval when asked to', async () => {
    const service = new Counting(30, false);
    await service.start();
    expect(service.passes).toBe(0);
    await waitFor(() => service.passes >= 3);
    await service.stop();
  });

  it('a failing pass is reported with the count of failures in a row and retried before the interval', async () => {
    const service = new Counting(60_000);
    service.fail = true;
    await service.start();
    await waitFor(() => service.errors.length >= 3, { timeoutMs: 5_000 });
    expect(service.errors.slice(0, 3)).toEqual([1, 2, 3]);
    service.fail = false;
    await waitFor(() => service.passes > service.errors.length);
    await service.stop();
  });
});

describe('Lifecycle', () => {
  const lifecycle = (start: (signal: AbortSignal) => Promise<void>) => {
    const calls: string[] = [];
    const life = new Lifecycle('test service', {
      start: async (signal) => {
        calls.push('start');
        await start(signal);
      },
      stop: async () => {
        calls.push('stop');
      },
    });
    return { life, calls };
  };

  it('stop() before start() does nothing, and start() afterwards is refused', async () => {
    const { life, calls } = lifecycle(async () => {});
    await life.stop();
    await expect(life.start()).rejects.toThrow(/was stopped/);
    expect(calls).toEqual([]);
  });

  it('stop() during start() aborts the start, which then resolves, and stops once', async () => {
    const { life, calls } = lifecycle(
      (signal) =>
        new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    );
    const started = life.start();
    await Promise.all([life.stop(), life.stop(), started]);
    expect(calls).toEqual(['start', 'stop']);
    expect(life.state).toBe('stopped');
  });

  it('a failed start stops what it started and rejects; stop() afterwards resolves', async () => {
    const { life, calls } = lifecycle(async () => {
      throw new Error('no database');
    });
    await expect(life.start()).rejects.toThrow('no database');
    await life.stop();
    expect(calls).toEqual(['start', 'stop']);
  });
});

describe('workers and schedulers started and stopped in any order', () => {
  it('end stopped, with no presence row left behind, whatever the order and timing', async () => {
    const q = db.queue('stress');
    q.handler(async function noop() {});
    const ids: string[] = [];
    for (let round = 0; round < 12; round++) {
      const services = [
        q.worker({ livenessIntervalMs: 100, pollIntervalMs: 50 }),
        q.scheduler({ livenessIntervalMs: 100, rescueIntervalMs: 20 }),
      ];
      for (const service of services) ids.push(service.id);
      const calls = services.flatMap((service) =>
        Array.from({ length: 4 }, (_, i) =>
          new Promise((resolve) => setTimeout(resolve, Math.random() * 30)).then(() =>
            i % 2 === 0 ? service.start().catch(() => {}) : service.stop(),
          ),
        ),
      );
      await Promise.all(calls);
      await Promise.all(services.map((service) => service.stop()));
      for (const service of services) expect(service.state).toBe('stopped');
    }
    // Long enough for a beat that was in flight at stop to have landed.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const rows = await db.rows<{ id: string }>('SELECT id FROM :schema.processes WHERE id = ANY($1)', [ids]);
    expect(rows).toEqual([]);
  });
});

describe('runWorker and runScheduler', () => {
  const sockets = new Set<Socket>();
  const blackhole = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  const listening = new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => blackhole.close(resolve));
  });

  it.each([
    ['runWorker', runWorker],
    ['runScheduler', runScheduler],
  ] as const)(
    '%s returns when the signal aborts while start() still waits for the database',
    async (_, run) => {
      await listening;
      const address = blackhole.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const q = new PgTq('hanging', { connectionString: `postgres://postgres@127.0.0.1:${port}/x` });
      q.handler(async function noop() {});
      const before = sockets.size;
      const controller = new AbortController();
      const running = run(q, { signal: controller.signal });
      await waitFor(() => sockets.size > before);
      controller.abort();
      await expect(running).resolves.toBeUndefined();
      void q.close(); // its pool still waits on the silent server; the sockets are destroyed after the file
    },
  );

  it('runWorker rejects at once when the database refuses connections', async () => {
    const q = new PgTq('refused', { connectionString: 'postgres://postgres@127.0.0.1:1/x' });
    q.handler(async function noop() {});
    await expect(runWorker(q, { signal: new AbortController().signal })).rejects.toThrow(/ECONNREFUSED/);
    await q.close();
  });
});

describe('a start while connections are being killed', () => {
  it('succeeds: a connection cut during start-up is opened again, never a failed start', async () => {
    const appName = `pgtq_start_storm_${db.schema}`.slice(0, 60);
    const url = new URL(db.url);
    url.searchParams.set('application_name', appName);
    let storming = true;
    let killed = 0;
    // Closing a queue whose connection was cut while opening hung here once: every round also closes.
    const storm = (async () => {
      while (storming) {
        const [row] = await db.rows<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
           WHERE application_name = $1 AND datname = current_database()`,
          [appName],
        );
        killed += row?.n ?? 0;
        // Storms every few dozen ms: most starts overlap one, as with a proxy that recycles connections.
        await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 80));
      }
    })();
    const failures: unknown[] = [];
    try {
      for (let round = 0; round < 20; round++) {
        const q = new PgTq('start_storm', { connectionString: url.toString(), schema: db.schema });
        q.handler(async function noop() {});
        const worker = q.worker();
        const scheduler = q.scheduler();
        await Promise.all([worker.start(), scheduler.start()]).catch((error: unknown) =>
          failures.push(error),
        );
        await q.close();
      }
    } finally {
      storming = false;
      await storm;
    }
    expect(killed).toBeGreaterThan(0);
    expect(
      failures.map((error) => `${(error as { code?: string }).code} ${(error as Error).message}`),
    ).toEqual([]);
  }, 60_000);
});

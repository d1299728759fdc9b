import type { DashboardSource } from './reads.js';

/** The histograms' bucket bounds, in seconds: from a quick pickup to a long job. */
const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800];

interface Histogram {
  /** By width_bucket's index: [i] counts the times from BOUNDS[i - 1] to below BOUNDS[i]. */
  buckets: number[];
  count: number;
  sum: number;
}

/**
 * The Prometheus exposition of one schema. Gauges (tasks by queue and state, the oldest
 * task's age, live processes) are read at each scrape. Counters and histograms (tasks
 * finished; wait and run times) count what finished since this server started: each
 * scrape reads only the history rows finished since the one before, so a scrape stays
 * cheap however long the history, and rate() works as on any counter.
 */
export class Metrics {
  readonly #source: DashboardSource;
  #since: Date | null = null;
  readonly #finished = new Map<string, number>();
  readonly #wait = new Map<string, Histogram>();
  readonly #run = new Map<string, Histogram>();
  /** Scrapes take turns: two at once must not count the same rows twice. */
  #turn: Promise<unknown> = Promise.resolve();

  constructor(source: DashboardSource) {
    this.#source = source;
  }

  render(): Promise<string> {
    const next = this.#turn.then(() => this.#render());
    this.#turn = next.catch(() => {});
    return next;
  }

  async #render(): Promise<string> {
    const { q, statements, queries } = this.#source;
    const [rows, summary, processes] = await Promise.all([
      queries.finishedSince(q.pool, this.#since, BOUNDS),
      statements.listQueueSummary(q.pool, null),
      statements.listProcesses(q.pool),
    ]);
    for (const row of rows) {
      if (row.until !== null) {
        this.#since = row.until;
        continue;
      }
      const key = labels({ queue: row.queue, name: row.name, state: row.state });
      this.#finished.set(key, (this.#finished.get(key) ?? 0) + row.count);
      const task = labels({ queue: row.queue, name: row.name });
      observe(this.#wait, task, row.wait_bucket, row.count, row.wait_sum);
      observe(this.#run, task, row.run_bucket, row.count, row.run_sum);
    }
    const live = new Map<string, number>();
    for (const p of processes) {
      const key = labels({ kind: p.kind, queue: p.queue });
      live.set(key, (live.get(key) ?? 0) + 1);
    }
    return [
      family('pgtq_tasks', 'gauge', 'Tasks now, by queue and state.', [
        ...summary.map((s) => [labels({ queue: s.queue, state: s.state }), s.count] as const),
      ]),
      family('pgtq_oldest_task_age_seconds', 'gauge', 'Age of the oldest task of each queue and state.', [
        ...summary.map((s) => [labels({ queue: s.queue, state: s.state }), s.oldest_age_ms / 1000] as const),
      ]),
      family('pgtq_live_processes', 'gauge', 'Workers and schedulers alive now.', [...live]),
      family(
        'pgtq_tasks_finished_total',
        'counter',
        'Tasks finished since this server started, by queue, task name and state.',
        [...this.#finished],
      ),
      histogram(
        'pgtq_task_wait_seconds',
        'Time from due to started, of tasks finished since this server started.',
        this.#wait,
      ),
      histogram(
        'pgtq_task_run_seconds',
        'Time from started to finished, of tasks finished since this server started.',
        this.#run,
      ),
    ].join('');
  }
}

function observe(
  histograms: Map<string, Histogram>,
  key: string,
  bucket: number | null,
  count: number,
  sum: number,
): void {
  if (bucket === null) return; // never started: no wait or run time
  let h = histograms.get(key);
  if (!h) {
    h = { buckets: new Array(BOUNDS.length + 1).fill(0), count: 0, sum: 0 };
    histograms.set(key, h);
  }
  h.buckets[bucket] = (h.buckets[bucket] ?? 0) + count;
  h.count += count;
  h.sum += sum;
}

/** `{a="1",b="2"}`, escaped as the text format wants. */
function labels(values: Record<string, string>): string {
  const escaped = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  return `{${Object.entries(values)
    .map(([k, v]) => `${k}="${escaped(v)}"`)
    .join(',')}}`;
}

function family(
  name: string,
  type: string,
  help: string,
  samples: Iterable<readonly [string, number]>,
): string {
  let text = `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
  for (const [labelText, value] of samples) text += `${name}${labelText} ${value}\n`;
  return text;
}

function histogram(name: string, help: string, histograms: Map<string, Histogram>): string {
  let text = `# HELP ${name} ${help}\n# TYPE ${name} histogram\n`;
  for (const [labelText, h] of histograms) {
    const inner = labelText.slice(1, -1);
    let cumulative = 0;
    BOUNDS.forEach((bound, i) => {
      cumulative += h.buckets[i] ?? 0;
      text += `${name}_bucket{${inner},le="${bound}"} ${cumulative}\n`;
    });
    text += `${name}_bucket{${inner},le="+Inf"} ${h.count}\n`;
    text += `${name}_sum${labelText} ${h.sum}\n${name}_count${labelText} ${h.count}\n`;
  }
  return text;
}

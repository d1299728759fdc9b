/**
 * Flow control's measures (pgtq only), each beside plain tasks in the same run:
 * - throughput over N no-op tasks at c = 10: plain; in 1,000 groups under groupConcurrency 5; under
 *   a rate limit of 100,000 per second, which does not bind (so the figure is what enforcing costs);
 * - pickup of a new task pushed while a backlog of `backlog` tasks (2 ms each) drains: one at a time
 *   behind plain tasks (FIFO: it waits for the backlog), and as a small group behind a big group.
 */
import { drain, now, sleep } from './harness.js';

/** Sample tasks' indices start here, apart from the backlog's. */
export const SAMPLE_BASE = 10_000_000;

/**
 * @typedef {{ backlog: number, samples: number, spacingMs: number, capMs: number }} FlowScale
 */

/**
 * @param {any} subject a pgtq subject (bench/subjects/pgtq.js)
 * @param {{ process: number, bulkBatch: number, processCapMs: number, flow: FlowScale }} s
 * @param {(key: string, result: any) => { figures: Record<string, number>, flags: Record<string, string>, notes: string[] }} processResult
 */
export async function measureFlow(subject, s, processResult) {
  const results = [];
  for (const [key, kind] of /** @type {const} */ ([
    ['flowPlain', null],
    ['flowGroups', 'groups'],
    ['flowRate', 'rate'],
  ])) {
    await subject.useFlow(kind);
    await subject.prepush(s.process, s.bulkBatch);
    results.push(processResult(key, await subject.process(s.process, 10, { capMs: s.processCapMs })));
    await subject.stopWorkers();
  }
  const behindPlain = await pickupBehind(subject, 'slow', s.flow);
  const behindGroup = await pickupBehind(subject, 'slowGrouped', s.flow);
  const figures = Object.assign({}, ...results.map((r) => r.figures), {
    flowBehindPlainP50: behindPlain.p50,
    flowBehindGroupP50: behindGroup.p50,
    flowBehindGroupP99: behindGroup.p99,
  });
  return {
    figures,
    flags: Object.assign({}, ...results.map((r) => r.flags)),
    notes: [
      ...results.flatMap((r) => r.notes),
      `behind ${s.flow.backlog} tasks: plain ${behindPlain.missing} and group ${behindGroup.missing} not started by the cap`,
    ],
  };
}

/**
 * Pushes a backlog of `kind` tasks, starts a worker (c = 10), then pushes `samples` more, `spacingMs`
 * apart without waiting for them: each sample's pickup is its push → handler start.
 * @param {any} subject
 * @param {'slow' | 'slowGrouped'} kind
 * @param {FlowScale} scale
 */
async function pickupBehind(subject, kind, { backlog, samples, spacingMs, capMs }) {
  await subject.useFlow(kind);
  await subject.prepush(backlog, 1_000);
  const recorder = subject.recorder;
  for (let k = 0; k < samples; k++) recorder.starts.delete(SAMPLE_BASE + k);
  recorder.active = true;
  await subject.startWorker(10);
  /** @type {number[]} */
  const pushedAt = [];
  for (let k = 0; k < samples; k++) {
    pushedAt.push(now());
    await subject.pushSample(SAMPLE_BASE + k);
    await sleep(spacingMs);
  }
  const deadline = now() + capMs;
  while (now() < deadline && pushedAt.some((_, k) => !recorder.starts.has(SAMPLE_BASE + k))) await sleep(20);
  recorder.active = false;
  const gaveUpAt = now();
  let missing = 0;
  const waits = pushedAt
    .map((at, k) => {
      const started = recorder.starts.get(SAMPLE_BASE + k);
      if (started === undefined) missing++;
      return (started ?? gaveUpAt) - at;
    })
    .sort((a, b) => a - b);
  await drain({ ...subject.unfinished(), timeoutMs: capMs });
  await subject.stopWorkers();
  const at = (/** @type {number} */ q) =>
    waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), missing };
}

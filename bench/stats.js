/**
 * Small statistics over lists of numbers: medians over repeats, percentiles over samples.
 */

/**
 * The p-th percentile (0–100) of `values`, linearly interpolated between the two closest ranks.
 * @param {readonly number[]} values
 * @param {number} p
 * @returns {number}
 */
export function percentile(values, p) {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = /** @type {number} */ (sorted[low]);
  const highValue = /** @type {number} */ (sorted[high]);
  return lowValue + (highValue - lowValue) * (rank - low);
}

/**
 * @param {readonly number[]} values
 * @returns {number}
 */
export function median(values) {
  return percentile(values, 50);
}

/**
 * @typedef {{ median: number, min: number, max: number, n: number }} Summary
 */

/**
 * The median, min and max of repeated figures; NaN throughout when there are none.
 * @param {readonly number[]} values
 * @returns {Summary}
 */
export function summarize(values) {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  return {
    median: median(finite),
    min: Math.min(...finite),
    max: Math.max(...finite),
    n: finite.length,
  };
}

/**
 * p50/p95/p99 of one run's samples.
 * @param {readonly number[]} samples
 */
export function latencyFigures(samples) {
  return {
    p50: percentile(samples, 50),
    p95: percentile(samples, 95),
    p99: percentile(samples, 99),
  };
}

/**
 * Tasks per second for `count` tasks handled in `ms` milliseconds.
 * @param {number} count
 * @param {number} ms
 */
export function rate(count, ms) {
  return ms > 0 ? (count * 1000) / ms : Number.NaN;
}

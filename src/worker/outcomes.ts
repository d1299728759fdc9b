import type { Backoff } from '../handler/options.js';
import { assertJson, assertJsonSize, storableText } from '../json.js';

/** Thrown by a handler: try the task again after `delayMs`, whatever attempts are left. */
export class Retry extends Error {
  readonly delayMs: number;
  constructor(options: { delayMs?: number; reason?: string } = {}) {
    super(options.reason ?? 'retry requested');
    this.name = 'Retry';
    this.delayMs = options.delayMs ?? 0;
  }
}

/** Thrown by a handler: stop the task for good, as `cancelled`, without further attempts. */
export class Cancel extends Error {
  constructor(reason = 'cancelled by its handler') {
    super(reason);
    this.name = 'Cancel';
  }
}

/** The reason a task's signal aborts when someone cancels it while it runs. */
export class CancelRequested extends Cancel {
  constructor(taskId: string) {
    super(`task ${taskId} was cancelled while running`);
    this.name = 'CancelRequested';
  }
}

/** Thrown by a handler: the task fails for good now, whatever attempts are left. */
export class Fail extends Error {
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = 'Fail';
  }
}

/**
 * Thrown by a handler: this attempt failed; if attempts are left, the next one
 * waits at least `afterMs` (longer if the back-off says so), as an HTTP
 * Retry-After asks.
 */
export class RetryAfter extends Error {
  readonly afterMs: number;
  constructor(reason: string, afterMs: number, options?: ErrorOptions) {
    super(reason, options);
    this.name = 'RetryAfter';
    this.afterMs = afterMs;
  }
}

/** How one attempt ended, as data. */
export type Outcome =
  | { kind: 'succeeded'; result: unknown }
  | { kind: 'retry'; delayMs: number; error: string }
  | { kind: 'failed'; error: string }
  | { kind: 'cancelled'; error: string };

const MAX_ERROR_LENGTH = 8_000;

export function describeError(error: unknown): string {
  const text = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
  // Stored in a batch with other tasks' outcomes: text PostgreSQL refuses would fail them all.
  return storableText(text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}…` : text);
}

export function backoffDelayMs(
  backoff: Backoff,
  attempt: number,
  random: () => number = Math.random,
): number {
  const delay = Math.min(backoff.maxMs, backoff.baseMs * backoff.factor ** Math.max(0, attempt - 1));
  return Math.round(delay * (1 - backoff.jitter * random()));
}

/**
 * The outcome of an attempt that returned `result`: stored as JSON, or failed if
 * it is not JSON or its JSON is over `maxBytes`. Decided here, before the outcome
 * joins a batch, so that one bad result cannot fail the statement storing others.
 */
export function successOutcome(result: unknown, maxBytes: number): Outcome {
  try {
    if (result === undefined) return { kind: 'succeeded', result: null };
    assertJsonSize(result, assertJson(result, 'result'), maxBytes, 'result', 'maxResultBytes');
    return { kind: 'succeeded', result };
  } catch (error) {
    // Running again would produce the same unstorable value.
    return { kind: 'failed', error: describeError(error) };
  }
}

/** The outcome of an attempt that threw `error`. */
export function failureOutcome(
  error: unknown,
  task: { attempt: number; maxAttempts: number },
  backoff: Backoff,
  options: { retryable?: boolean } = {},
): Outcome {
  if (error instanceof Cancel) return { kind: 'cancelled', error: describeError(error) };
  if (error instanceof Retry) return { kind: 'retry', delayMs: error.delayMs, error: describeError(error) };
  if (error instanceof Fail || options.retryable === false || task.attempt >= task.maxAttempts) {
    return { kind: 'failed', error: describeError(error) };
  }
  const delayMs = backoffDelayMs(backoff, task.attempt);
  const atLeast = error instanceof RetryAfter ? error.afterMs : 0;
  return { kind: 'retry', delayMs: Math.max(delayMs, atLeast), error: describeError(error) };
}

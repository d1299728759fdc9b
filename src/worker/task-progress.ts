import { ValidationError } from '../errors.js';
import { assertJson } from '../json.js';

/** The most bytes of JSON one task's progress may hold. */
export const MAX_PROGRESS_BYTES = 8_192;

/**
 * What a running task's handler last reported with `this.progress(…)`, kept
 * here until a heartbeat or the task's outcome stores it: a handler may report
 * as often as it likes, and the database sees one write per heartbeat at most.
 */
export class TaskProgress {
  #value: unknown;
  #unsaved = false;
  readonly #onReport: () => void;

  constructor(onReport: () => void) {
    this.#onReport = onReport;
  }

  /** Keeps `value` (JSON, at most MAX_PROGRESS_BYTES) to be stored, or throws a typed error. */
  report(value: unknown): void {
    if (assertJson(value, 'progress') > MAX_PROGRESS_BYTES) {
      const bytes = Buffer.byteLength(JSON.stringify(value), 'utf8');
      if (bytes > MAX_PROGRESS_BYTES) {
        throw new ValidationError(`progress: ${bytes} bytes of JSON, over the ${MAX_PROGRESS_BYTES} allowed`);
      }
    }
    this.#value = value;
    this.#unsaved = true;
    this.#onReport();
  }

  /** The value reported since it was last stored, if any. */
  unsaved(): { value: unknown } | undefined {
    return this.#unsaved ? { value: this.#value } : undefined;
  }

  /** `value` is stored: unless a newer one came meanwhile, nothing is left to store. */
  saved(value: unknown): void {
    if (this.#value === value) this.#unsaved = false;
  }
}

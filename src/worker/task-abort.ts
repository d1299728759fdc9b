/**
 * How a running task is stopped: on timeout, cancellation, a lost lease or shutdown.
 * Its AbortSignal is made only when the handler first reads it: most handlers
 * never do, and an AbortController with its listeners is, for a short task, a
 * large share of what a worker spends running it. `race` settles the attempt
 * with the abort reason without listening on a signal at all.
 */
export class TaskAbort {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #reject: ((reason: unknown) => void) | undefined;

  /** The signal a handler sees; aborted already if the task was stopped before it asked. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Stops the task with `reason`; only the first call counts. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#reject?.(reason);
  }

  /** Settles with `work`, or rejects with the abort reason as soon as the task is stopped (the work itself goes on). */
  race<T>(work: Promise<T>): Promise<T> {
    if (this.#aborted) return Promise.reject(this.#reason);
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      work.then(resolve, reject);
    });
  }
}

/** What `result()` and `progress()` need from the queue. */
export interface ResultSource {
  result<R>(id: string, options?: ResultOptions): Promise<R>;
  progress(id: string): Promise<unknown>;
}

export interface ResultOptions {
  /** Reject with a TimeoutError after this long. @default no limit */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A stored task, as returned by push. */
export class TaskRef<R = unknown> {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  /**
   * False when the push carried a key and a pending (scheduled or ready) task with
   * that key already existed in the queue: nothing was stored, and `id` is the
   * pending task's.
   */
  readonly inserted: boolean;
  readonly #source: ResultSource;

  constructor(source: ResultSource, fields: { id: string; queue: string; name: string; inserted: boolean }) {
    this.#source = source;
    this.id = fields.id;
    this.queue = fields.queue;
    this.name = fields.name;
    this.inserted = fields.inserted;
  }

  /** Resolves with the task's result once it succeeds; rejects with TaskFailedError if it fails or is cancelled. */
  result(options?: ResultOptions): Promise<R> {
    return this.#source.result<R>(this.id, options);
  }

  /**
   * What the task's handler last reported with `this.progress(…)` (null if nothing):
   * while it runs, as of the worker's last heartbeat; once finished, the last value.
   */
  progress(): Promise<unknown> {
    return this.#source.progress(this.id);
  }

  toJSON() {
    return { id: this.id, queue: this.queue, name: this.name, inserted: this.inserted };
  }
}

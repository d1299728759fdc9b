import type pg from 'pg';
import pgListen from 'pg-listen';
import type { Logger } from '../logger.js';

// Under NodeNext the CommonJS default export arrives as a namespace.
const createSubscriber = pgListen.default;

/** What the database announces, each on the channel "<schema>.<kind>" with the queue name as payload. */
export type NotificationKind = 'task_ready' | 'task_scheduled' | 'task_finished' | 'task_cancel';

type Callback = (payload: string) => void;

/**
 * One LISTEN connection shared by everything in a PgTq instance. A notification
 * is only a hint that something changed; subscribers re-read the tables. What is
 * sent while the connection is down is lost, so after every reconnect the
 * `onReconnect` callbacks run and subscribers re-read at once.
 */
export class Listener {
  readonly #schema: string;
  readonly #subscriber: ReturnType<typeof createSubscriber>;
  readonly #callbacks = new Map<NotificationKind, Set<Callback>>();
  readonly #reconnectCallbacks = new Set<() => void>();
  #connecting: Promise<void> | undefined;
  #connectedOnce = false;
  #closed = false;

  constructor(clientConfig: pg.ClientConfig, schema: string, logger: Logger) {
    this.#schema = schema;
    this.#subscriber = createSubscriber(
      { ...clientConfig, application_name: 'pgtq listener' },
      {
        parse: (payload) => payload,
        retryLimit: Number.POSITIVE_INFINITY,
        retryTimeout: 0,
        paranoidChecking: 10_000,
      },
    );
    this.#subscriber.events.on('error', (error) =>
      logger.error('listener connection failed', { error: error.message }),
    );
    this.#subscriber.events.on('reconnect', (attempt) => logger.warn('listener reconnecting', { attempt }));
    this.#subscriber.events.on('connected', () => {
      if (!this.#connectedOnce) {
        this.#connectedOnce = true;
        return;
      }
      logger.info('listener reconnected');
      for (const callback of this.#reconnectCallbacks) callback();
    });
  }

  /** Calls `callback` with the payload of every `kind` notification; returns the unsubscribe function. */
  async on(kind: NotificationKind, callback: Callback): Promise<() => void> {
    await this.#connect();
    let callbacks = this.#callbacks.get(kind);
    if (!callbacks) {
      const set = new Set<Callback>();
      callbacks = set;
      this.#callbacks.set(kind, set);
      this.#subscriber.notifications.on(this.#channel(kind), (payload: string) => {
        for (const callback of set) callback(payload);
      });
      await this.#subscriber.listenTo(this.#channel(kind));
    }
    callbacks.add(callback);
    return () => callbacks.delete(callback);
  }

  /** Calls `callback` after each reconnect; returns the unsubscribe function. */
  onReconnect(callback: () => void): () => void {
    this.#reconnectCallbacks.add(callback);
    return () => this.#reconnectCallbacks.delete(callback);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#connecting)
      await this.#connecting.then(
        () => this.#subscriber.close(),
        () => {},
      );
  }

  #connect(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('pgtq: the listener is closed'));
    this.#connecting ??= this.#subscriber.connect();
    return this.#connecting as Promise<void>;
  }

  #channel(kind: NotificationKind): string {
    return `${this.#schema}.${kind}`;
  }
}

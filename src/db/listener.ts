import type pg from 'pg';
import pgListen from 'pg-listen';
import { ConfigError } from '../errors.js';
import type { Logger } from '../logger.js';
import { backoffMs, retryWhileConnectionLost, within } from '../service.js';

// Under NodeNext the CommonJS default export arrives as a namespace.
const createSubscriber = pgListen.default;
type Subscriber = ReturnType<typeof createSubscriber>;

/** What the database announces, each on the channel "<schema>.<kind>" with the queue name as payload. */
export type NotificationKind = 'task_ready' | 'task_scheduled' | 'task_finished' | 'task_cancel';

type Callback = (payload: string) => void;

/** What workers, schedulers and result() need of the notifications: a Listener, or none at all. */
export interface Notifications {
  /** False when nothing LISTENs: those who wait then rely on polling alone. */
  readonly listening: boolean;
  /** Calls `callback` with the payload of every `kind` notification; resolves to the unsubscribe function. */
  on(kind: NotificationKind, callback: Callback): Promise<() => void>;
  /** Calls `callback` after each reconnect; returns the unsubscribe function. */
  onReconnect(callback: () => void): () => void;
  close(): Promise<void>;
}

/** No LISTEN connection (the `listen: false` option): nothing is ever announced. */
export const noNotifications: Notifications = Object.freeze({
  listening: false,
  on: async () => () => {},
  onReconnect: () => () => {},
  close: async () => {},
});

/** A Listener on a connection made with `config`, or, for null (the `listen: false` option), none. */
export function openNotifications(
  config: pg.ClientConfig | null,
  schema: string,
  logger: Logger,
): Notifications {
  return config ? new Listener(config, schema, logger) : noNotifications;
}

/** Tries of the first connection when it is cut while opening. */
const FIRST_CONNECT_ATTEMPTS = 4;
/** How long close() waits for a connection to end. */
const END_WAIT_MS = 1_000;

/**
 * One LISTEN connection shared by everything in a PgTq instance. A notification
 * is only a hint that something changed; subscribers re-read the tables.
 *
 * The first connection fails fast, so a process started against an unreachable
 * database says so at once. After that, a lost connection is reopened with
 * back-off for as long as it takes; what was sent meanwhile is lost, so the
 * `onReconnect` callbacks run and subscribers re-read at once. pg-listen does
 * the LISTENing; the reconnecting is done here (pg-listen is told never to
 * retry), so that close() always ends it and a dead connection never lingers.
 */
export class Listener implements Notifications {
  readonly listening = true;
  readonly #clientConfig: pg.ClientConfig;
  readonly #schema: string;
  readonly #logger: Logger;
  readonly #channels = new Map<string, Set<Callback>>();
  readonly #reconnectCallbacks = new Set<() => void>();
  #subscriber: Subscriber | undefined;
  /** The connection being opened, so that close() can end it while it hangs. */
  #opening: Subscriber | undefined;
  /** Connections lost while being opened: made current, they are replaced at once. */
  readonly #lostWhileOpening = new WeakSet<Subscriber>();
  #connecting: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** The LISTENs under way on the current connection, one after another. */
  #listening: Promise<unknown> = Promise.resolve();
  /** Between a lost connection and its replacement. */
  #reconnecting = false;
  #failures = 0;
  #closed = false;

  constructor(clientConfig: pg.ClientConfig, schema: string, logger: Logger) {
    this.#clientConfig = { ...clientConfig, application_name: 'pgtq listener' };
    this.#schema = schema;
    this.#logger = logger;
  }

  /**
   * Calls `callback` with the payload of every `kind` notification; returns the
   * unsubscribe function. Rejects if the first connection cannot be made.
   */
  async on(kind: NotificationKind, callback: Callback): Promise<() => void> {
    await this.#connectOnce();
    const channel = `${this.#schema}.${kind}`;
    let callbacks = this.#channels.get(channel);
    if (!callbacks) {
      callbacks = new Set();
      this.#channels.set(channel, callbacks);
      // One LISTEN at a time: pg wants one query at a time on a connection. A
      // connection lost meanwhile LISTENs again to every channel when it is back.
      const subscriber = this.#subscriber;
      this.#listening = this.#listening.then(() => subscriber?.listenTo(channel)).catch(() => {});
      await this.#listening;
    }
    const own = callbacks;
    own.add(callback);
    return () => own.delete(callback);
  }

  /** Calls `callback` after each reconnect; returns the unsubscribe function. */
  onReconnect(callback: () => void): () => void {
    this.#reconnectCallbacks.add(callback);
    return () => this.#reconnectCallbacks.delete(callback);
  }

  /** Ends the connection and any reconnecting. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    // A connection still opening ends itself once open (see #open): no waiting for it here.
    await Promise.all([this.#end(this.#opening), this.#end(this.#subscriber)]);
    this.#subscriber = undefined;
  }

  /** The first connection: a failure rejects (and the next call tries again). */
  #connectOnce(): Promise<void> {
    if (this.#closed) return Promise.reject(new ConfigError('the queue is closed'));
    if (this.#subscriber || this.#reconnecting) return Promise.resolve();
    this.#connecting ??= this.#openFirst()
      .then((subscriber) => this.#use(subscriber))
      .finally(() => {
        this.#connecting = undefined;
      });
    return this.#connecting;
  }

  /** Opens the first connection; one cut while opening (a restart, a terminated backend) is tried again. */
  #openFirst(): Promise<Subscriber> {
    return retryWhileConnectionLost(
      () => this.#open(),
      FIRST_CONNECT_ATTEMPTS,
      () => this.#closed,
    );
  }

  /** Opens a connection that LISTENs to every channel subscribed so far. */
  async #open(): Promise<Subscriber> {
    const subscriber = createSubscriber(this.#clientConfig, {
      parse: (payload) => payload,
      // Never retry inside pg-listen: a lost connection reports an 'error' and is reopened here.
      retryLimit: 1,
      paranoidChecking: 10_000,
    });
    subscriber.events.on('error', (error) => this.#lost(subscriber, error));
    subscriber.events.on('notification', ({ channel, payload }) => {
      for (const callback of this.#channels.get(channel) ?? []) callback(payload as string);
    });
    this.#opening = subscriber;
    try {
      await subscriber.connect();
    } catch (error) {
      await this.#end(subscriber);
      throw error;
    } finally {
      this.#opening = undefined;
    }
    // The server answered: a connection lost from here on is reopened, not a failed start.
    for (const channel of this.#channels.keys()) await subscriber.listenTo(channel)?.catch(() => {});
    if (this.#closed) {
      await this.#end(subscriber);
      throw new ConfigError('the queue is closed');
    }
    return subscriber;
  }

  /** Makes `subscriber` the connection, or reopens at once if it was lost while opening. */
  #use(subscriber: Subscriber): void {
    this.#subscriber = subscriber;
    if (!this.#lostWhileOpening.has(subscriber)) return;
    this.#failures++;
    this.#lost(subscriber, new Error('lost while connecting'));
  }

  #lost(subscriber: Subscriber, error: Error): void {
    if (this.#closed) return;
    if (subscriber !== this.#subscriber) {
      this.#lostWhileOpening.add(subscriber); // not current yet, or an old one: #use decides
      return;
    }
    this.#subscriber = undefined;
    this.#reconnecting = true;
    void this.#end(subscriber);
    this.#logger.warn('listener connection lost; reconnecting', { error: error.message });
    this.#retryLater();
  }

  #retryLater(): void {
    const delayMs = this.#failures === 0 ? 0 : backoffMs(this.#failures);
    this.#retryTimer = setTimeout(() => void this.#reconnect(), delayMs);
    this.#retryTimer.unref();
  }

  async #reconnect(): Promise<void> {
    this.#retryTimer = undefined;
    try {
      this.#connecting = this.#open().then((subscriber) => this.#use(subscriber));
      await this.#connecting;
    } catch (error) {
      this.#connecting = undefined;
      if (this.#closed) return;
      this.#failures++;
      this.#logger.warn('listener reconnect failed', {
        attempt: this.#failures,
        retryInMs: backoffMs(this.#failures),
        error: (error as Error).message,
      });
      this.#retryLater();
      return;
    }
    this.#connecting = undefined;
    if (!this.#subscriber) return; // lost again while opening: another attempt is on its way
    this.#reconnecting = false;
    this.#failures = 0;
    this.#logger.info('listener reconnected');
    for (const callback of this.#reconnectCallbacks) callback();
  }

  /**
   * Ends a connection, waiting at most a second: pg's end() of a connection cut
   * while it was being opened can wait forever for an 'end' that never comes.
   */
  async #end(subscriber: Subscriber | undefined): Promise<void> {
    if (subscriber)
      await within(
        subscriber.close().catch(() => {}),
        END_WAIT_MS,
      );
  }
}

import type * as Api from '@opentelemetry/api';
import type { Queryable } from './db/queryable.js';
import { SqlFiles } from './db/sql-files.js';
import type { TaskInfo } from './handler/context.js';

/**
 * OpenTelemetry, when the app has it: a producer span for each push and a consumer span
 * for each attempt, parented (and linked) to the push's context, which is stored with
 * the task (see task_traces in migrations/). @opentelemetry/api is the app's, not a
 * dependency of pgtq: without it, or without a tracer that records, nothing is done.
 */
let api: Promise<typeof Api | null> | undefined;
let loaded: typeof Api | null = null;

/** The app's @opentelemetry/api, loaded once; null when it has none. */
export function openTelemetry(): Promise<typeof Api | null> {
  api ??= import('@opentelemetry/api').then(
    (module) => {
      loaded = module;
      return module;
    },
    () => null,
  );
  return api;
}

/**
 * The API once loaded, while the app has registered a tracer provider (an SDK); null
 * otherwise: then a worker neither reads trace contexts nor makes spans.
 */
export function activeTracing(): typeof Api | null {
  if (!loaded) return null;
  const provider = loaded.trace.getTracerProvider() as { getDelegate?: () => object };
  const delegate = provider.getDelegate?.() ?? provider;
  return delegate.constructor.name === 'NoopTracerProvider' ? null : loaded;
}

export interface TraceCarrier {
  traceparent: string;
  tracestate?: string | null;
}

class TraceStatements extends SqlFiles {
  async add(db: Queryable, ids: readonly string[], carrier: TraceCarrier): Promise<void> {
    await this.run(db, 'task_traces_add', [ids, carrier.traceparent, carrier.tracestate ?? null]);
  }

  async get(db: Queryable, ids: readonly string[]): Promise<Map<string, TraceCarrier>> {
    const rows = await this.run<TraceCarrier & { id: string }>(db, 'task_traces_get', [ids]);
    return new Map(rows.map(({ id, ...carrier }) => [id, carrier]));
  }

  async prune(db: Queryable, limit: number): Promise<number> {
    const [row] = await this.run<{ pruned: number }>(db, 'task_traces_prune', [limit]);
    return row?.pruned ?? 0;
  }
}

const statements = new Map<string, TraceStatements>();
/** The trace statements of a schema (unprepared: they run only while tracing). */
export function traceStatements(schema: string): TraceStatements {
  let s = statements.get(schema);
  if (!s) {
    s = new TraceStatements(schema, { preparedStatements: false });
    statements.set(schema, s);
  }
  return s;
}

const ATTRIBUTE = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  operation: 'messaging.operation.type',
  id: 'messaging.message.id',
  task: 'pgtq.task.name',
  attempt: 'pgtq.task.attempt',
  outcome: 'pgtq.task.outcome',
} as const;

/**
 * Runs `push` in a producer span, and stores the span's context with the tasks it
 * stored (`storedIds`), on the same client: inside the caller's transaction, if any.
 */
export async function tracedPush<T>(
  schema: string,
  db: Queryable,
  queue: string,
  names: readonly string[],
  push: () => Promise<T>,
  storedIds: (result: T) => string[],
): Promise<T> {
  const otel = (await openTelemetry()) && activeTracing();
  if (!otel) return push();
  const tracer = otel.trace.getTracer('pgtq');
  return tracer.startActiveSpan(
    `send ${queue}`,
    {
      kind: otel.SpanKind.PRODUCER,
      attributes: {
        [ATTRIBUTE.system]: 'pgtq',
        [ATTRIBUTE.destination]: queue,
        [ATTRIBUTE.operation]: 'send',
        [ATTRIBUTE.task]: [...new Set(names)].join(','),
      },
    },
    async (span) => {
      try {
        const result = await push();
        const ids = span.isRecording() ? storedIds(result) : [];
        if (ids.length > 0) {
          if (ids.length === 1) span.setAttribute(ATTRIBUTE.id, ids[0] as string);
          await traceStatements(schema).add(db, ids, toCarrier(span.spanContext()));
        }
        return result;
      } catch (error) {
        span.recordException(error as Error);
        span.setStatus({ code: otel.SpanStatusCode.ERROR });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** The outcome a consumer span ends with. */
export type SpanOutcome = 'succeeded' | 'retried' | 'failed' | 'cancelled';

/**
 * Runs one attempt of `task` in a consumer span, a child of (and linked to) the push's
 * context `carrier` when there is one. `run` returns the attempt's outcome.
 */
export async function tracedRun<T>(
  otel: typeof Api,
  task: TaskInfo,
  carrier: TraceCarrier | undefined,
  run: () => Promise<{ value: T; outcome: SpanOutcome; error?: string }>,
): Promise<T> {
  const link = carrier ? fromCarrier(otel, carrier) : undefined;
  const pushed = link ? otel.trace.setSpanContext(otel.ROOT_CONTEXT, link) : otel.ROOT_CONTEXT;
  const span = otel.trace.getTracer('pgtq').startSpan(
    `process ${task.queue}`,
    {
      kind: otel.SpanKind.CONSUMER,
      links: link ? [{ context: link }] : [],
      attributes: {
        [ATTRIBUTE.system]: 'pgtq',
        [ATTRIBUTE.destination]: task.queue,
        [ATTRIBUTE.operation]: 'process',
        [ATTRIBUTE.id]: task.id,
        [ATTRIBUTE.task]: task.name,
        [ATTRIBUTE.attempt]: task.attempt,
      },
    },
    pushed,
  );
  try {
    const { value, outcome, error } = await otel.context.with(otel.trace.setSpan(pushed, span), run);
    span.setAttribute(ATTRIBUTE.outcome, outcome);
    if (outcome !== 'succeeded')
      span.setStatus({ code: otel.SpanStatusCode.ERROR, ...(error ? { message: error } : {}) });
    return value;
  } finally {
    span.end();
  }
}

/**
 * A span context as W3C Trace Context headers, written by pgtq itself: what is stored
 * must not depend on the propagators an app happens to register.
 */
function toCarrier(span: Api.SpanContext): TraceCarrier {
  const flags = (span.traceFlags & 0xff).toString(16).padStart(2, '0');
  return {
    traceparent: `00-${span.traceId}-${span.spanId}-${flags}`,
    tracestate: span.traceState?.serialize() ?? null,
  };
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function fromCarrier(otel: typeof Api, carrier: TraceCarrier): Api.SpanContext | undefined {
  const match = TRACEPARENT.exec(carrier.traceparent);
  if (!match) return undefined;
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  return {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16),
    isRemote: true,
    ...(carrier.tracestate ? { traceState: otel.createTraceState(carrier.tracestate) } : {}),
  };
}

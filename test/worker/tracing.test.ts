import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Fail, type Worker } from '../../src/index.js';
import { waitFor } from '../helpers/database.js';
import { useTestSchema } from '../helpers/queue.js';

// OpenTelemetry, as an app sets it up: one trace from the request that pushed a task to the
// worker's run of it, through the trace context stored with the task.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const db = await useTestSchema('pgtq_tracing');
const q = db.queue('traced');
const sendWelcome = q.handler(async function send_welcome(email: string) {
  if (email.endsWith('.invalid')) throw new Fail('no such domain');
  return { sent: email };
});
let worker: Worker;
beforeAll(async () => {
  worker = q.worker();
  await worker.start();
});
afterAll(async () => {
  await worker.stop();
  await provider.shutdown();
});

const spans = (name: string) => exporter.getFinishedSpans().filter((span) => span.name === name);

it('one trace from the request that pushed a task to the run of it, with the messaging attributes', async () => {
  const tracer = trace.getTracer('app');
  const { ref, request } = await tracer.startActiveSpan('POST /signup', async (span) => {
    const pushed = await sendWelcome.push('ada@example.com');
    span.end();
    return { ref: pushed, request: span.spanContext() };
  });
  await ref.result({ timeoutMs: 10_000 });
  await waitFor(() => spans('process traced').some((s) => s.attributes['messaging.message.id'] === ref.id));

  const [send] = spans('send traced').filter((s) => s.attributes['messaging.message.id'] === ref.id);
  expect(send?.kind).toBe(SpanKind.PRODUCER);
  expect(send?.spanContext().traceId).toBe(request.traceId);
  expect(send?.parentSpanContext?.spanId).toBe(request.spanId);
  expect(send?.attributes).toMatchObject({
    'messaging.system': 'pgtq',
    'messaging.destination.name': 'traced',
    'messaging.operation.type': 'send',
    'pgtq.task.name': 'send_welcome',
  });

  const [run] = spans('process traced').filter((s) => s.attributes['messaging.message.id'] === ref.id);
  expect(run?.kind).toBe(SpanKind.CONSUMER);
  expect(run?.spanContext().traceId).toBe(request.traceId);
  expect(run?.parentSpanContext?.spanId).toBe(send?.spanContext().spanId);
  expect(run?.links.map((link) => link.context.spanId)).toEqual([send?.spanContext().spanId]);
  expect(run?.attributes).toMatchObject({
    'messaging.operation.type': 'process',
    'pgtq.task.name': 'send_welcome',
    'pgtq.task.attempt': 1,
    'pgtq.task.outcome': 'succeeded',
  });
  expect(run?.status.code).not.toBe(SpanStatusCode.ERROR);
});

it('a failed run ends its span with the error, and the scheduler prunes the contexts of finished tasks', async () => {
  const ref = await trace.getTracer('app').startActiveSpan('POST /signup', async (span) => {
    const pushed = await sendWelcome.push('bob@nowhere.invalid');
    span.end();
    return pushed;
  });
  await expect(ref.result({ timeoutMs: 10_000 })).rejects.toThrow(/no such domain/);
  await waitFor(() => spans('process traced').some((s) => s.attributes['messaging.message.id'] === ref.id));
  const [run] = spans('process traced').filter((s) => s.attributes['messaging.message.id'] === ref.id);
  expect(run?.attributes['pgtq.task.outcome']).toBe('failed');
  expect(run?.status).toMatchObject({ code: SpanStatusCode.ERROR });
  expect(run?.status.message).toMatch(/no such domain/);

  expect((await db.rows('SELECT task_id::text FROM :schema.task_traces')).length).toBeGreaterThan(0);
  const scheduler = q.scheduler();
  await scheduler.start();
  try {
    await waitFor(async () => (await db.rows('SELECT 1 FROM :schema.task_traces')).length === 0, {
      timeoutMs: 15_000,
    });
  } finally {
    await scheduler.stop();
  }
});

it('a push outside any recording span stores no trace context', async () => {
  const before = await db.rows('SELECT count(*)::int AS n FROM :schema.task_traces');
  trace.disable();
  try {
    await (await sendWelcome.push('carol@example.com')).result({ timeoutMs: 10_000 });
  } finally {
    trace.setGlobalTracerProvider(provider);
  }
  expect(await db.rows('SELECT count(*)::int AS n FROM :schema.task_traces')).toEqual(before);
});

import { z } from 'zod/v4';
import type { TaskInfo } from '../handler/context.js';
import { httpWorkerOptions } from '../http/request.js';
import type { TaskHooks } from './run-task.js';

export const workerOptions = z
  .object({
    /** Tasks run at once. @default 10 */
    concurrency: z.number().int().min(1).max(10_000).default(10),
    /**
     * At most this many tasks claimed ahead of free slots and held, their leases
     * kept alive, until a slot frees: one claim then serves many short tasks. Only
     * as many are held as would start within about 50 ms at the recent pace, so
     * long tasks are not held from other workers. Held tasks go back to ready when
     * the worker stops. 0 claims only for free slots. @default 20 × concurrency
     */
    prefetch: z.number().int().min(0).max(100_000).optional(),
    /** How long a claim is valid without a heartbeat; a dead worker's tasks are rescued after this. @default 20_000 */
    leaseMs: z.number().int().min(1000).max(3_600_000).default(20_000),
    /**
     * The safety-net poll for missed notifications (jittered ±20 %); without LISTEN
     * (the `listen: false` connection option) the only way to find new tasks.
     * @default 10_000, or 1_000 without LISTEN
     */
    pollIntervalMs: z.number().int().min(50).optional(),
    /** On stop, how long running tasks may finish before their signal is aborted. @default 10_000 */
    shutdownGraceMs: z.number().int().nonnegative().default(10_000),
    /** How often the worker records that it is alive (see the live_processes view). @default 5_000 */
    livenessIntervalMs: z.number().int().min(100).default(5_000),
    /** Names this worker in the tasks it claims. @default host:pid:random */
    workerId: z.string().min(1).max(200).optional(),
    /** Runs the queue's HTTP tasks (`q.pushHttp`): `true`, or how (hosts allowed, signing, …). */
    http: z.union([z.literal(true), httpWorkerOptions]).optional(),
    hooks: z
      .custom<TaskHooks>(
        (value) => typeof value === 'object' && value !== null,
        'expected { before?, after? }',
      )
      .optional(),
  })
  .strict();
export type WorkerOptions = z.input<typeof workerOptions>;
export type ResolvedWorkerOptions = Readonly<z.output<typeof workerOptions> & { pollIntervalMs: number }>;

/** The poll's default: a safety net beside LISTEN, the only wake-up without it. */
export const defaultPollIntervalMs = (listening: boolean) => (listening ? 10_000 : 1_000);

/** The events a worker emits, with their arguments. */
/** How an attempt ended, for metrics: see the `task:end` event. */
export interface TaskEnd {
  outcome: 'succeeded' | 'retried' | 'failed' | 'cancelled';
  /** From due to started (by two clocks when the worker and the database are on two hosts). */
  pickupMs: number;
  /** From started to the handler's end; 0 for a task cancelled before it started. */
  runMs: number;
}

export interface WorkerEvents {
  start: [];
  stop: [];
  'task:start': [task: TaskInfo];
  'task:success': [task: TaskInfo, result: unknown];
  'task:retry': [task: TaskInfo, error: string, delayMs: number];
  'task:failure': [task: TaskInfo, error: string];
  'task:cancel': [task: TaskInfo, reason: string];
  /** After each of the four above, with the attempt's times: one listener feeds metrics. */
  'task:end': [task: TaskInfo, end: TaskEnd];
  /** The attempt's outcome was refused: its lease ran out and the task was handed on. */
  'task:lease-lost': [task: TaskInfo];
  /**
   * Scheduled tasks of this queue are overdue and no scheduler is alive to
   * promote them. Emitted (and logged) once, and again only after a scheduler was seen.
   */
  'scheduler:missing': [overdue: number];
  /** Something went wrong outside any task (a claim failed, say); the worker carries on. */
  'worker:error': [error: Error];
}

/** Emits one of the worker's events; the parts of a worker report through it. */
export type EmitWorkerEvent = <K extends keyof WorkerEvents>(event: K, ...args: WorkerEvents[K]) => void;

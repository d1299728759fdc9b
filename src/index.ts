export {
  type CancelResult,
  type FlowStatus,
  isTaskId,
  type ProgressOptions,
  type TaskFilter,
} from './admin.js';
export type { Connection, ConnectionOptions } from './config.js';
export type { Client as PushClient, DrizzleClient, KyselyClient, PostgresJsClient } from './db/clients.js';
export type { FlowGroupRow, PausedRow } from './db/flow-statements.js';
export type { Queryable } from './db/queryable.js';
export type { ParentTask, ProcessRow, QueueSummaryRow, TaskRow } from './db/task-rows.js';
export {
  ConfigError,
  DuplicateHandlerError,
  LeaseLostError,
  NotJsonError,
  NotMigratedError,
  PayloadTooLargeError,
  PgTqError,
  TaskFailedError,
  TaskNotFoundError,
  TimeoutError,
  UnknownHandlerError,
  ValidationError,
} from './errors.js';
export type { TaskContext, TaskInfo } from './handler/context.js';
export {
  type ContractFunction,
  type ContractHandlerOptions,
  type ContractPusher,
  defineTask,
  type TaskContract,
  type TaskTypes,
} from './handler/contract.js';
export type { Handler, HandlerFunction, Pusher } from './handler/handler.js';
export type {
  BackoffOptions,
  HandlerOptionsInput as HandlerOptions,
  PushOptions,
} from './handler/options.js';
export {
  HTTP_TASK,
  type HttpRequest,
  type HttpResponse,
  type HttpWorkerOptions,
} from './http/request.js';
export { SIGNATURE_HEADER, verifyHttpSignature } from './http/signature.js';
export type { Logger } from './logger.js';
export { PgTq } from './pgtq.js';
export { runScheduler, runWorker } from './run.js';
export { Scheduler, type SchedulerEvents, type SchedulerOptions } from './scheduler/scheduler.js';
export type { CatchUp, ScheduleInfo, ScheduleOptions } from './scheduler/schedules.js';
export {
  FINISHED_STATES,
  type FinishedState,
  PENDING_STATES,
  TASK_STATES,
  type TaskState,
} from './states.js';
export { type ResultOptions, TaskRef } from './task-ref.js';
export { ClaimedTask } from './worker/claimed-task.js';
export { Cancel, Fail, type Outcome, Retry, RetryAfter } from './worker/outcomes.js';
export type { TaskHooks } from './worker/run-task.js';
export { type TaskEnd, Worker, type WorkerEvents, type WorkerOptions } from './worker/worker.js';

/** The states of a task; mirrors the `task_state` enum of the database. */
export const TASK_STATES = [
  'waiting',
  'scheduled',
  'ready',
  'running',
  'succeeded',
  'failed',
  'cancelled',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States of a task that has not ended: it lives in the `tasks` table ('waiting': for tasks it runs after). */
export const PENDING_STATES = [
  'waiting',
  'scheduled',
  'ready',
  'running',
] as const satisfies readonly TaskState[];
/** States of a task that has ended: it lives in the `finished_tasks` table. */
export const FINISHED_STATES = ['succeeded', 'failed', 'cancelled'] as const satisfies readonly TaskState[];
export type FinishedState = (typeof FINISHED_STATES)[number];

export function isFinished(state: TaskState): state is FinishedState {
  return (FINISHED_STATES as readonly TaskState[]).includes(state);
}

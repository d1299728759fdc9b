import type { Command } from '../common.js';
import { cancelCommand } from './cancel.js';
import { dashboardCommand } from './dashboard.js';
import { demoCommand } from './demo.js';
import { flushCommand } from './flush.js';
import { migrateCommand } from './migrate.js';
import { pauseCommand, resumeCommand } from './pause.js';
import { pushCommand } from './push.js';
import { retryCommand } from './retry.js';
import { schedulerCommand } from './scheduler.js';
import { schedulesCommand } from './schedules.js';
import { statsCommand } from './stats.js';
import { taskCommand } from './task.js';
import { tasksCommand } from './tasks.js';
import { workerCommand } from './worker.js';
import { workersCommand } from './workers.js';

export const commands: Record<string, Command> = {
  migrate: migrateCommand,
  worker: workerCommand,
  scheduler: schedulerCommand,
  schedules: schedulesCommand,
  push: pushCommand,
  stats: statsCommand,
  workers: workersCommand,
  tasks: tasksCommand,
  task: taskCommand,
  retry: retryCommand,
  cancel: cancelCommand,
  flush: flushCommand,
  pause: pauseCommand,
  resume: resumeCommand,
  dashboard: dashboardCommand,
  demo: demoCommand,
};

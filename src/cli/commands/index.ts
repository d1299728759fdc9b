import type { Command } from '../common.js';
import { demoCommand } from './demo.js';
import { migrateCommand } from './migrate.js';
import { pushCommand } from './push.js';
import { schedulerCommand } from './scheduler.js';
import { statsCommand } from './stats.js';
import { workerCommand } from './worker.js';

export const commands: Record<string, Command> = {
  migrate: migrateCommand,
  worker: workerCommand,
  scheduler: schedulerCommand,
  push: pushCommand,
  stats: statsCommand,
  demo: demoCommand,
};

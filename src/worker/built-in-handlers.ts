import type { AnyHandler } from '../handler/handler.js';
import { undoHandlers } from '../handler/undo.js';
import type { HttpWorkerOptions } from '../http/request.js';
import { httpTaskHandler } from '../http/send.js';
import type { Runtime } from '../runtime.js';

/**
 * The queue as a worker sees it: its handlers, plus pgtq's own for the tasks
 * they imply: the compensations of handlers with `undo`, and HTTP tasks if the
 * worker has `http`. Handlers registered on the queue later show too (handlers
 * are only ever added, so a change of size is a change).
 */
export function withBuiltInHandlers(runtime: Runtime, http: HttpWorkerOptions | true | undefined): Runtime {
  const httpHandler = http ? httpTaskHandler(runtime, http) : undefined;
  let handlers = new Map<string, AnyHandler>();
  let seen = -1;
  const view: Runtime = Object.create(runtime, {
    handlers: {
      get: () => {
        if (runtime.handlers.size !== seen) {
          seen = runtime.handlers.size;
          const own = [...runtime.handlers.values()];
          const added = [...undoHandlers(runtime, own), ...(httpHandler ? [httpHandler] : [])];
          handlers = new Map([...runtime.handlers, ...added.map((h) => [h.taskName, h] as const)]);
        }
        return handlers;
      },
    },
  });
  return view;
}

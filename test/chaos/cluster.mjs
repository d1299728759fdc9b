/**
 * A throwaway PostgreSQL cluster that the chaos suite owns, so it may crash it:
 * initdb into a fresh temporary folder, start on a free port, restart with
 * `-m immediate` (a crash: no checkpoint, recovery from the WAL), stop and remove.
 *
 * fsync is off: it makes initdb and every commit faster, and it does not weaken
 * what the suite tests. An immediate shutdown kills the server processes, not the
 * machine, so every WAL record already written to the kernel survives it, and
 * synchronous_commit stays on: a COMMIT is acknowledged only once its WAL record
 * is written. Only a crash of the machine itself could lose data with fsync off.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

/** Where the PostgreSQL binaries are: $PGTQ_CHAOS_PG_BIN, else the newest under /usr/lib/postgresql. */
export function findBinaries() {
  const fromEnv = process.env.PGTQ_CHAOS_PG_BIN;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error('no PostgreSQL binaries found under /usr/lib/postgresql; set PGTQ_CHAOS_PG_BIN');
  }
  return join(root, versions[0], 'bin');
}

/** A TCP port free right now on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** The uid and gid of `user`, read with `id` (no dependency on a passwd parser). */
function userIds(user) {
  const id = (flag) => Number(execFileSync('id', [flag, user], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

export class Cluster {
  /** @type {string} */ dir;
  /** @type {string} */ dataDir;
  /** @type {string} */ logFile;
  /** @type {number} */ port = 0;
  /** @type {string} */ url = '';
  #bin;
  /** initdb refuses to run as root: then every server command runs as the postgres user. */
  #asPostgres = process.getuid?.() === 0;
  #removed = false;

  constructor(bin = findBinaries()) {
    this.#bin = bin;
    // A folder under /tmp (traversable by everyone) that the server's user owns.
    this.dir = mkdtempSync(join(tmpdir(), 'pgtq-chaos-'));
    chmodSync(this.dir, 0o755);
    if (this.#asPostgres) {
      const { uid, gid } = userIds('postgres');
      chownSync(this.dir, uid, gid);
    }
    this.dataDir = join(this.dir, 'data');
    this.logFile = join(this.dir, 'postgres.log');
  }

  /** initdb, then start the server and wait until it accepts connections. */
  async start() {
    this.port = await freePort();
    this.#run('initdb', [
      '-D',
      this.dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    const settings = {
      port: this.port,
      listen_addresses: "'127.0.0.1'",
      unix_socket_directories: `'${this.dir}'`,
      fsync: 'off',
      synchronous_commit: 'on',
      full_page_writes: 'on',
      max_connections: 200,
      // The suite's own view of what happened, in the server log.
      log_min_messages: 'warning',
      log_line_prefix: "'%m [%p] %a '",
    };
    const conf = Object.entries(settings).map(([name, value]) => `${name} = ${value}\n`);
    appendFileSync(join(this.dataDir, 'postgresql.conf'), conf.join(''));
    this.#run('pg_ctl', ['-D', this.dataDir, '-l', this.logFile, '-w', '-t', '60', 'start']);
    this.url = `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /**
   * Crashes the server (SIGQUIT to every backend: no checkpoint, no goodbye to
   * clients) and starts it again; resolves once it accepts connections after recovery.
   */
  async restartImmediate() {
    await this.#runAsync('pg_ctl', [
      '-D',
      this.dataDir,
      '-l',
      this.logFile,
      '-m',
      'immediate',
      '-w',
      '-t',
      '120',
      'restart',
    ]);
  }

  /** Keeps a copy of the server log in `folder` (the cluster's folder is removed). */
  saveLog(folder) {
    if (existsSync(this.logFile)) copyFileSync(this.logFile, join(folder, 'postgres.log'));
  }

  /** Stops the server at once and removes its folder. Synchronous, so it can run on exit. Idempotent. */
  remove() {
    if (this.#removed) return;
    this.#removed = true;
    if (existsSync(join(this.dataDir, 'postmaster.pid'))) {
      this.#run('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', '-t', '30', 'stop'], {
        check: false,
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The command line running server binary `name` as the server's user. */
  #command(name, args) {
    const file = join(this.#bin, name);
    return this.#asPostgres ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  }

  /** Runs a server binary without blocking: the producers and the supervisor go on meanwhile. */
  async #runAsync(name, args) {
    const [command, argv] = this.#command(name, args);
    await promisify(execFile)(command, argv).catch((error) => {
      throw new Error(`${name} ${args.join(' ')} failed: ${error.stderr || error.message}`);
    });
  }

  /** Runs a server binary; throws with its output when it fails. Synchronous, so it works on exit too. */
  #run(name, args, { check = true } = {}) {
    const [command, argv] = this.#command(name, args);
    // stdout is progress chatter; stderr says why a command failed.
    const result = spawnSync(command, argv, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (check && result.status !== 0) {
      throw new Error(`${name} ${args.join(' ')} exited ${result.status ?? result.signal}: ${result.stderr}`);
    }
    return result;
  }
}

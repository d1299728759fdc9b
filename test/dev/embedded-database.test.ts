import { execFileSync, spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { described } from '../helpers/cli.js';
import { waitFor } from '../helpers/database.js';
import { modeOf, reports, type StagedCheckout, stageCheckout } from '../helpers/staged-checkout.js';

// These run the built dist/dev from a staged copy of the checkout in a 0700 folder, each with a TMPDIR of
// its own, which must be empty again however the process ended. There is no testcontainers in the staged
// copy, so the fallback goes straight to the embedded server.
const script = fileURLToPath(new URL('./fixtures/embedded.mjs', import.meta.url));
const asRoot = process.getuid?.() === 0;

/** The uid and gid of a user, by name. */
function idsOf(user: string): { uid: number; gid: number } {
  const id = (flag: string) => Number.parseInt(execFileSync('id', [flag, user], { encoding: 'utf8' }), 10);
  return { uid: id('-u'), gid: id('-g') };
}

/** Whether `user` may run the program at `path` (every folder on the way included). */
function mayRun(user: { uid: number; gid: number }, path: string): boolean {
  return spawnSync('/bin/sh', ['-c', 'test -x "$1"', 'sh', path], user).status === 0;
}

/** A server that is gone refuses connections. */
async function refusesConnections(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  return client.connect().then(
    () => client.end().then(() => false),
    () => true,
  );
}

describe('the embedded server from a checkout in a folder of mode 0700', () => {
  it('starts, answers, stops and leaves nothing in TMPDIR', { timeout: 120_000 }, async () => {
    const checkout = await stageCheckout(script);
    expect(await modeOf(checkout.root)).toBe(0o700);

    const run = await checkout.run('start-stop');
    const result = await run.finished;
    expect(result.code, described(result)).toBe(0);
    const [server] = reports(result.stdout);
    expect(server?.answer).toBe(2);
    expect(String(server?.dataDirectory)).toMatch(new RegExp(`^${run.tmp}/pgtq-pg-[^/]+/`));
    expect(await readdir(run.tmp)).toEqual([]);
    expect(await refusesConnections(String(server?.url))).toBe(true);

    if (asRoot) {
      // PostgreSQL refuses to run as root: it ran as `postgres`, who cannot enter the checkout's folder,
      // so it ran programs linked into the server's own temp folder, not the checkout's.
      const postgres = idsOf('postgres');
      expect(postgres.uid).not.toBe(0);
      expect(server?.owner).toBe(postgres.uid);
      expect(mayRun(postgres, '/bin/sh')).toBe(true);
      expect(mayRun(postgres, join(checkout.binaries, 'initdb'))).toBe(false);
    } else {
      // Not root: no other user is involved, and the server runs as we do.
      expect(server?.owner).toBe(process.getuid?.());
    }
  });

  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)(
    '%s stops the server, removes its folder, and ends the process by that signal',
    { timeout: 120_000 },
    async (signal) => {
      const checkout = await stageCheckout(script);
      const run = await checkout.run('serve');
      const server = await waitFor(
        () => {
          if (run.child.exitCode !== null) throw new Error(`exited early:\n${run.output()}\n${run.errors()}`);
          return reports(run.output())[0];
        },
        { timeoutMs: 90_000 },
      );
      expect(server.answer).toBe(2);

      run.child.kill(signal);
      const result = await run.finished;
      expect(result.signal, described(result)).toBe(signal);
      expect(await readdir(run.tmp)).toEqual([]);
      expect(await refusesConnections(String(server.url))).toBe(true);
    },
  );

  it('a signal during initialisation still removes everything', { timeout: 120_000 }, async () => {
    const checkout = await stageCheckout(script);
    const run = await checkout.run('signal-while-starting');
    const result = await run.finished;
    // It sent itself SIGTERM as initialisation began: it never got to report a started server.
    expect(reports(result.stdout), described(result)).toEqual([]);
    expect(result.signal, described(result)).toBe('SIGTERM');
    expect(await readdir(run.tmp)).toEqual([]);
  });
});

describe('a fallback that cannot start', () => {
  it.each([
    {
      what: 'initdb cannot be run',
      breakIt: (checkout: StagedCheckout) => checkout.replaceProgram('initdb', '', 0o644),
      expected: /^ {2}- embedded: cannot run initdb: spawn \S+initdb EACCES$/m,
    },
    {
      what: 'the server exits at start',
      // initdb runs this program too (its version, the bootstrap): only the server, given a port, fails.
      breakIt: (checkout: StagedCheckout) =>
        checkout.replaceProgram(
          'postgres',
          '#!/bin/sh\ncase " $* " in *" -p "*) echo "FATAL:  broken on purpose" >&2; exit 1;; esac\nexec "$0.real" "$@"\n',
          0o755,
          'postgres.real',
        ),
      expected: /^ {2}- embedded: PostgreSQL exited during start \(code 1\):\nFATAL: {2}broken on purpose$/m,
    },
  ])(
    '$what: one clear error, no unhandled event, nothing left',
    { timeout: 120_000 },
    async ({ breakIt, expected }) => {
      const checkout = await stageCheckout(script);
      await breakIt(checkout);
      const run = await checkout.run('fallback');
      const result = await run.finished;

      // The script catches what startFallbackDatabase throws and exits 2; an unhandled 'error' event or
      // rejection would end it with 1 and a stack on stderr.
      expect(result.code, described(result)).toBe(2);
      expect(result.stderr).toBe('');
      const [report] = reports(result.stdout);
      const message = String(report?.error);
      expect(message).toMatch(/^no PostgreSQL available: set DATABASE_URL/);
      expect(message).toMatch(/^ {2}- container: /m);
      expect(message).toMatch(expected);
      expect(await readdir(run.tmp)).toEqual([]);
    },
  );
});

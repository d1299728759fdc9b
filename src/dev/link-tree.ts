import { chmod, copyFile, link, mkdir, readdir, readlink, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Recreates the folder `from` at `to` (which must not exist yet) so that every user can read it and run
 * its programs: folders get mode 0755, files are hard-linked (no copy, no extra space), symbolic links are
 * recreated as they are. A file is copied instead when it cannot be linked (another file system) or when
 * its own mode would keep other users out, since a link shares the mode of the original.
 */
export async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to);
  // Explicitly, whatever the umask.
  await chmod(to, 0o755);
  const entries = await readdir(from, { withFileTypes: true });
  await Promise.all(
    entries.map(async (entry) => {
      const source = join(from, entry.name);
      const target = join(to, entry.name);
      if (entry.isDirectory()) await linkTree(source, target);
      else if (entry.isSymbolicLink()) await symlink(await readlink(source), target);
      else await linkFile(source, target);
    }),
  );
}

async function linkFile(source: string, target: string): Promise<void> {
  const mode = (await stat(source)).mode & 0o777;
  // Readable by all; runnable by all if its owner may run it.
  const wanted = mode | 0o444 | (mode & 0o100 ? 0o111 : 0);
  if (mode === wanted) {
    try {
      await link(source, target);
      return;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // EXDEV: another file system; EPERM: links refused (e.g. protected_hardlinks for a file not ours).
      if (code !== 'EXDEV' && code !== 'EPERM') throw error;
    }
  }
  await copyFile(source, target);
  await chmod(target, wanted);
}

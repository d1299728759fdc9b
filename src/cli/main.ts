#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { PgTqError } from '../index.js';
import { commands } from './commands/index.js';
import { type Command, GLOBAL_HELP, UsageError } from './common.js';

const HELP = `pgtq: a PostgreSQL-native transactional job queue

Usage: pgtq <command> [options]

Commands:
${Object.entries(commands)
  .map(([name, command]) => `  ${name.padEnd(10)} ${command.summary}`)
  .join('\n')}

Run "pgtq <command> --help" for a command's options.
Run "pgtq --version" for pgtq's version.`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    process.stderr.write(`${HELP}\n`);
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  // -V, since -v is --verbose
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command: Command | undefined = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}"; run "pgtq --help"`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.summary}\n\nUsage: ${command.usage}\n\n${GLOBAL_HELP}\n`);
    return 0;
  }
  return (await command.run({ argv: rest, out: process.stdout, err: process.stderr })) ?? 0;
}

const verbose = process.argv.includes('--verbose') || process.argv.includes('-v');
main(process.argv.slice(2))
  .then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.exitCode = error instanceof UsageError ? 2 : 1;
      process.stderr.write(`pgtq: ${describe(error)}\n`);
      if (verbose && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    },
  )
  .finally(() => {
    // The command is done: something still open (a handler module's own connections, a
    // connection stuck on an unreachable host) must not keep the process alive.
    setTimeout(() => process.exit(), 1_000).unref();
  });

/**
 * The version in the package.json next to this module's folder (dist/cli/ in a
 * package), read at run time so it is the installed package's, not a copy.
 */
function packageVersion(): string {
  const file = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

/** One clear line, for the errors a user meets: bad usage, bad input, an unreachable database. */
function describe(error: unknown): string {
  if (error instanceof UsageError || error instanceof PgTqError) return error.message;
  const code = (error as { code?: string }).code;
  if (
    code === 'ECONNREFUSED' ||
    code === 'ENOTFOUND' ||
    code === 'ETIMEDOUT' ||
    code === '28P01' ||
    code === '3D000'
  ) {
    return `cannot connect to the database: ${(error as Error).message || code}`;
  }
  // invalid_schema_name, undefined_table, undefined_function: most likely a schema not migrated yet
  if (code === '3F000' || code === '42P01' || code === '42883') {
    return `${(error as Error).message} (has "pgtq migrate" been run for this schema?)`;
  }
  if (error instanceof AggregateError && error.errors[0]) return describe(error.errors[0]);
  return error instanceof Error ? error.message : String(error);
}

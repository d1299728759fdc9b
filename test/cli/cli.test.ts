import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands/index.js';
import { cli, described, lines, pgtq, STACK_FRAME, UNREACHABLE } from '../helpers/cli.js';
import { dropSchema, uniqueSchemaName, waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

const db = await useTestSchema('pgtq_cli');

const migrationNames = readdirSync(new URL('../../migrations/', import.meta.url))
  .filter((f) => f.endsWith('.sql'))
  .map((f) => f.replace(/\.sql$/, ''))
  .sort();
const COMMANDS = Object.keys(commands);
const DEMO_SCHEMA = 'pgtq_demo';

/** The test database and schema, through the environment as a deployment would set them. */
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };

async function tasksNamed(name: string) {
  return db.rows<{
    id: string;
    queue: string;
    name: string;
    args: unknown;
    state: string;
    priority: number;
    max_attempts: number;
    key: string | null;
    run_at: Date;
  }>(
    'SELECT id::text, queue, name, args, state::text, priority, max_attempts, key, run_at FROM :schema.tasks WHERE name = $1 ORDER BY id',
    [name],
  );
}

async function schemaExists(schema: string): Promise<boolean> {
  const [row] = await db.rows<{ exists: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS exists',
    [schema],
  );
  return row?.exists ?? false;
}

describe('pgtq migrate', () => {
  const fresh = uniqueSchemaName('pgtq_cli_migrate');
  afterAll(() => dropSchema(fresh));

  it('creates the schema and its tables on a fresh schema, then finds it up to date', async () => {
    expect(await schemaExists(fresh)).toBe(false);
    const freshEnv = { DATABASE_URL: db.url, PGTQ_SCHEMA: fresh };

    const first = await pgtq(['migrate', '--json'], freshEnv);
    expect(first.code, described(first)).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ schema: fresh, applied: migrationNames });
    // the progress it logs goes to stderr, one line per migration, so stdout stays parseable
    for (const name of migrationNames) expect(first.stderr).toContain(`migration=${name}`);

    const relations = await db.rows<{ name: string }>(
      `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v') ORDER BY 1`,
      [fresh],
    );
    expect(relations.map((r) => r.name)).toEqual(
      expect.arrayContaining([
        'tasks',
        'finished_tasks',
        'schedules',
        'processes',
        'migrations',
        'queue_summary',
        'task_history',
        'all_tasks',
      ]),
    );
    const recorded = await db.rows<{ name: string }>(`SELECT name FROM "${fresh}".migrations ORDER BY name`);
    expect(recorded.map((r) => r.name)).toEqual(migrationNames);

    const second = await pgtq(['migrate', '--json'], freshEnv);
    expect(second.code, described(second)).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual({ schema: fresh, applied: [] });

    const third = await pgtq(['migrate'], freshEnv);
    expect(third.code, described(third)).toBe(0);
    expect(third.stdout).toBe(`schema ${fresh} is up to date\n`);
    // still applied once each
    expect((await db.rows<{ n: number }>(`SELECT count(*)::int AS n FROM "${fresh}".migrations`))[0]?.n).toBe(
      migrationNames.length,
    );
  });

  it('--schema and --database-url override the environment, and the text output names what it applied', async () => {
    const other = uniqueSchemaName('pgtq_cli_migrate_flags');
    try {
      const result = await pgtq(['migrate', '--schema', other, '--database-url', db.url], {
        DATABASE_URL: UNREACHABLE,
        PGTQ_SCHEMA: 'pgtq_cli_never_used',
      });
      expect(result.code, described(result)).toBe(0);
      expect(result.stdout).toBe(
        `applied ${migrationNames.length} migration(s) to schema ${other}: ${migrationNames.join(', ')}\n`,
      );
      expect(await schemaExists(other)).toBe(true);
      expect(await schemaExists('pgtq_cli_never_used')).toBe(false);
    } finally {
      await dropSchema(other);
    }
  });
});

describe('pgtq push', () => {
  it('stores the task with its JSON arguments in the given queue and prints it as JSON', async () => {
    const result = await pgtq(['push', 'cli_add', '[2, 3, {"x": "y"}]', '--queue', 'cli_q', '--json'], env);
    expect(result.code, described(result)).toBe(0);
    expect(result.stderr).toBe('');
    const printed = JSON.parse(result.stdout) as {
      id: string;
      queue: string;
      name: string;
      inserted: boolean;
    };
    expect(printed).toEqual({
      id: expect.stringMatching(/^\d+$/),
      queue: 'cli_q',
      name: 'cli_add',
      inserted: true,
    });

    const stored = await tasksNamed('cli_add');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      id: printed.id,
      queue: 'cli_q',
      name: 'cli_add',
      args: [2, 3, { x: 'y' }],
      state: 'ready',
      priority: 0,
      key: null,
    });
  });

  it('prints the bare id without --json; without <json-args> the arguments are []; the queue defaults to "default"', async () => {
    const result = await pgtq(['push', 'cli_no_args'], env);
    expect(result.code, described(result)).toBe(0);
    expect(result.stdout).toMatch(/^\d+\n$/);
    const stored = await tasksNamed('cli_no_args');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: result.stdout.trim(), queue: 'default', args: [], state: 'ready' });
  });

  it('--delay-ms, --priority, --max-attempts and --key reach the stored task; a second push with the key is not inserted', async () => {
    const before = Date.now();
    const flags = ['--delay-ms', '3600000', '--priority', '5', '--max-attempts', '3', '--key', 'k1'];
    const first = await pgtq(['push', 'cli_options', '["a"]', '-q', 'cli_q', ...flags], env);
    expect(first.code, described(first)).toBe(0);
    const id = first.stdout.trim();
    expect(id).toMatch(/^\d+$/);

    const stored = await tasksNamed('cli_options');
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      id,
      queue: 'cli_q',
      args: ['a'],
      state: 'scheduled',
      priority: 5,
      max_attempts: 3,
      key: 'k1',
    });
    // due about an hour later (generous bounds: this is about the option reaching the row, not speed)
    const dueInMs = (stored[0]?.run_at.getTime() ?? 0) - before;
    expect(dueInMs).toBeGreaterThan(3_500_000);
    expect(dueInMs).toBeLessThan(3_700_000);

    const again = await pgtq(['push', 'cli_options', '["b"]', '-q', 'cli_q', ...flags], env);
    expect(again.code, described(again)).toBe(0);
    expect(again.stdout).toBe(`${id} (already pending with this key)\n`);
    const againJson = await pgtq(['push', 'cli_options', '["c"]', '-q', 'cli_q', '--json', ...flags], env);
    expect(JSON.parse(againJson.stdout)).toMatchObject({ id, inserted: false });
    expect(await tasksNamed('cli_options')).toHaveLength(1);
  });

  it.each([
    {
      what: 'arguments that are not JSON',
      args: ['cli_bad', '[2, 3'],
      message: 'pgtq: <json-args> is not JSON: [2, 3',
    },
    {
      what: 'JSON arguments that are not an array',
      args: ['cli_bad', '{"a": 1}'],
      message: 'pgtq: <json-args> must be a JSON array, e.g. [2, 3]',
    },
    {
      what: 'an extra positional argument',
      args: ['cli_bad', '[]', 'extra'],
      message: 'pgtq: expected: pgtq push <task-name> [<json-args>]',
    },
    { what: 'no task name', args: [], message: 'pgtq: expected: pgtq push <task-name> [<json-args>]' },
    {
      what: 'a --priority that is not an integer',
      args: ['cli_bad', '[]', '--priority', 'high'],
      message: 'pgtq: --priority must be an integer, got "high"',
    },
  ])('$what: bad usage, exit 2, one line on stderr, nothing stored', async ({ args, message }) => {
    const result = await pgtq(['push', ...args], env);
    expect(result.code, described(result)).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`${message}\n`);
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(await tasksNamed('cli_bad')).toEqual([]);
  });
});

describe('pgtq stats', () => {
  // Queues of their own in the file's schema, so other tests' tasks do not change these counts.
  const pushAll = async () => {
    for (const args of [
      ['cli_stat', '[1]', '-q', 'cli_stats_a'],
      ['cli_stat', '[2]', '-q', 'cli_stats_a'],
      ['cli_stat', '[3]', '-q', 'cli_stats_a', '--delay-ms', '3600000'],
      ['cli_stat', '[4]', '-q', 'cli_stats_b'],
    ]) {
      const result = await pgtq(['push', ...args], env);
      expect(result.code, described(result)).toBe(0);
    }
  };
  const ours = (queue: string) => queue === 'cli_stats_a' || queue === 'cli_stats_b';

  it('prints a table of queues × states with the counts just pushed; --json holds the same counts', async () => {
    await pushAll();

    const text = await pgtq(['stats'], env);
    expect(text.code, described(text)).toBe(0);
    const [header, rule, ...body] = lines(text.stdout);
    expect(header?.split(/\s+/)).toEqual(['queue', 'state', 'count', 'oldest_age']);
    expect(rule).toMatch(/^-+( +-+){3}$/);
    const cells = body.map((line) => line.split(/\s+/));
    // every row has the four columns, aligned under the header
    const at = (column: string) => header?.indexOf(column) ?? -1;
    for (const [i, line] of body.entries()) {
      expect(line.slice(at('state')).startsWith(`${cells[i]?.[1]} `)).toBe(true);
      expect(line.slice(at('count')).startsWith(`${cells[i]?.[2]} `)).toBe(true);
    }
    expect(
      cells.filter(([queue]) => ours(queue ?? '')).map(([queue, state, count]) => [queue, state, count]),
    ).toEqual([
      ['cli_stats_a', 'scheduled', '1'],
      ['cli_stats_a', 'ready', '2'],
      ['cli_stats_b', 'ready', '1'],
    ]);
    for (const row of cells) expect(row[3]).toMatch(/^\d\d:\d\d:\d\d$/);

    const json = await pgtq(['stats', '--json'], env);
    expect(json.code, described(json)).toBe(0);
    const rows = JSON.parse(json.stdout) as {
      queue: string;
      state: string;
      count: number;
      oldest_age: string;
    }[];
    expect(rows.filter((row) => ours(row.queue))).toEqual([
      { queue: 'cli_stats_a', state: 'scheduled', count: 1, oldest_age: expect.any(String) },
      { queue: 'cli_stats_a', state: 'ready', count: 2, oldest_age: expect.any(String) },
      { queue: 'cli_stats_b', state: 'ready', count: 1, oldest_age: expect.any(String) },
    ]);

    // the same counts the database holds
    const counted = await db.rows<{ queue: string; state: string; count: number }>(
      `SELECT queue, state::text, count(*)::int AS count FROM :schema.tasks
       WHERE queue IN ('cli_stats_a', 'cli_stats_b')
       GROUP BY queue, tasks.state ORDER BY queue, tasks.state`,
    );
    expect(
      rows.filter((row) => ours(row.queue)).map(({ queue, state, count }) => ({ queue, state, count })),
    ).toEqual(counted);
  });

  it('on a schema without tasks prints "(none)" and --json prints []', async () => {
    const empty = uniqueSchemaName('pgtq_cli_empty');
    try {
      const migrated = await pgtq(['migrate', '--schema', empty], env);
      expect(migrated.code, described(migrated)).toBe(0);
      const text = await pgtq(['stats', '--schema', empty], env);
      expect([text.code, text.stdout]).toEqual([0, '(none)\n']);
      const json = await pgtq(['stats', '--schema', empty, '--json'], env);
      expect([json.code, JSON.parse(json.stdout)]).toEqual([0, []]);
    } finally {
      await dropSchema(empty);
    }
  });
});

describe('bad usage: exit 2 and one line on stderr', () => {
  it('an unknown command', async () => {
    const result = await pgtq(['frobnicate'], env);
    expect(result.code, described(result)).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe('pgtq: unknown command "frobnicate"; run "pgtq --help"\n');
  });

  it.each(['migrate', 'push', 'stats', 'demo'])('an unknown option of %s', async (command) => {
    const result = await pgtq([command, '--bogus'], env);
    expect(result.code, described(result)).toBe(2);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr), described(result)).toHaveLength(1);
    expect(result.stderr).toMatch(/^pgtq: Unknown option '--bogus'/);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it.each([['migrate'], ['push', 'cli_nodb', '[]'], ['stats']])(
    'no DATABASE_URL and no --database-url: %s',
    async (...args) => {
      const result = await pgtq(args, { PGTQ_SCHEMA: db.schema });
      expect(result.code, described(result)).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe('pgtq: no database: set DATABASE_URL or pass --database-url\n');
    },
  );

  it('no command at all prints the overview, and exits 2', async () => {
    const result = await pgtq([], env);
    expect(result.code, described(result)).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^Usage: pgtq <command> \[options\]$/m);
  });
});

describe('an unreachable database: exit 1', () => {
  it.each([
    ['migrate'],
    ['push', 'cli_unreachable', '[]'],
    ['stats'],
    ['stats', '--json'],
    ['tasks'],
    ['tasks', '--json'],
    ['task', '1'],
    ['retry', '1'],
    ['retry', '--failed'],
    ['cancel', '1'],
    ['flush', '--queue', 'x', '--yes'],
    ['workers'],
    ['workers', '--json'],
    ['stats', '--queue', 'a'],
  ])('%s: one line saying it cannot connect, no stack trace', async (...args) => {
    const result = await pgtq([...args, '--database-url', UNREACHABLE], env);
    expect(result.code, described(result)).toBe(1);
    expect(result.stdout).toBe('');
    expect(lines(result.stderr), described(result)).toHaveLength(1);
    expect(result.stderr).toMatch(/^pgtq: cannot connect to the database: .*ECONNREFUSED/);
    expect(result.stderr).not.toMatch(STACK_FRAME);
  });

  it('DATABASE_URL naming a database that does not exist also says it cannot connect', async () => {
    const url = new URL(db.url);
    url.pathname = '/pgtq_cli_no_such_database';
    const result = await pgtq(['stats'], { DATABASE_URL: url.toString(), PGTQ_SCHEMA: db.schema });
    expect(result.code, described(result)).toBe(1);
    expect(result.stderr).toBe(
      'pgtq: cannot connect to the database: database "pgtq_cli_no_such_database" does not exist\n',
    );
  });

  it.each(['--verbose', '-v'])('with %s, the stack trace follows the line', async (flag) => {
    const result = await pgtq(['stats', flag, '--database-url', UNREACHABLE], env);
    expect(result.code, described(result)).toBe(1);
    const [first, ...rest] = lines(result.stderr);
    expect(first).toMatch(/^pgtq: cannot connect to the database: .*ECONNREFUSED/);
    expect(rest[0]).toMatch(/^Error: .*ECONNREFUSED/);
    expect(rest.join('\n')).toMatch(STACK_FRAME);
  });

  it('a failure that is not about connecting (a schema never migrated) exits 1 with its message', async () => {
    const missing = uniqueSchemaName('pgtq_cli_missing');
    const result = await pgtq(['stats', '--schema', missing], env);
    expect(result.code, described(result)).toBe(1);
    expect(lines(result.stderr), described(result)).toHaveLength(1);
    expect(result.stderr).toMatch(new RegExp(`^pgtq: relation "${missing}\\.queue_summary" does not exist`));
    expect(result.stderr).toContain('pgtq migrate');
    expect(result.stderr).not.toMatch(STACK_FRAME);
    expect(await schemaExists(missing)).toBe(false);
  });
});

describe('--help', () => {
  it.each(['--help', '-h', 'help'])(
    'pgtq %s lists every command with its summary and exits 0',
    async (flag) => {
      const result = await pgtq([flag]);
      expect(result.code, described(result)).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout).toMatch(/^pgtq: a PostgreSQL-native transactional job queue\n/);
      expect(result.stdout).toContain('Usage: pgtq <command> [options]');
      for (const command of COMMANDS) expect(result.stdout).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
      expect(result.stdout).toContain('Run "pgtq <command> --help" for a command\'s options.');
    },
  );

  // Without DATABASE_URL: help needs no database (and `demo --help` must not start one).
  it.each(
    COMMANDS.flatMap((command) => [
      [command, '--help'],
      [command, '-h'],
    ]),
  )('pgtq %s %s prints its usage and the global options, and exits 0', async (command, flag) => {
    const result = await pgtq([command, flag]);
    expect(result.code, described(result)).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(new RegExp(`^Usage: pgtq ${command}\\b`, 'm'));
    expect(result.stdout).toContain('Options for every command:');
    expect(result.stdout).toContain('--database-url <url>');
  });

  it("a command's help shows its own options", async () => {
    expect((await pgtq(['push', '--help'])).stdout).toContain('--max-attempts <n>');
    expect((await pgtq(['stats', '--help'])).stdout).toContain('--watch');
    expect((await pgtq(['demo', '--help'])).stdout).toContain('--keep');
  });
});

describe('--version', () => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));

  // Without DATABASE_URL: the version needs no database.
  it.each(['--version', '-V'])('pgtq %s prints the package version and exits 0', async (flag) => {
    const result = await pgtq([flag]);
    expect(result.code, described(result)).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${version}\n`);
  });
});

describe('pgtq demo', () => {
  afterAll(async () => {
    // demo drops its schema itself (unless --keep); this only guards against a failed run leaving it
    await dropSchema(DEMO_SCHEMA);
  });

  const snapshot = async () =>
    db.rows<{ id: string; state: string }>('SELECT id::text, state::text FROM :schema.all_tasks ORDER BY id');

  it('runs end to end on DATABASE_URL in its own schema, leaves other schemas alone, and drops its own', async () => {
    const before = await snapshot();
    expect(before.length).toBeGreaterThan(0); // the tests above left tasks here, which the demo must not touch

    const result = await pgtq(['demo'], env, 90_000);
    expect(result.code, described(result)).toBe(0);
    const out = result.stdout;

    expect(out).toContain(`Migrating schema ${DEMO_SCHEMA}`);
    // 1. the committed sign-up's task runs once
    const welcome = out.match(/user \d+ created, task #(\d+) pushed in the same transaction/)?.[1];
    expect(welcome, out).toBeDefined();
    expect(out).toContain(`✓ send_welcome_email #${welcome} (attempt 1)`);
    // 2. the rolled-back one does not exist and never runs
    const ghost = out.match(/task #(\d+) exists after rollback: (\w+)/);
    expect(ghost?.[2], out).toBe('false');
    expect(out).not.toMatch(new RegExp(`✓ \\w+ #${ghost?.[1]} `));
    expect(out.match(/✓ send_welcome_email #/g)).toHaveLength(1);
    // 4. fan-out, a retry then success on attempt 2, the delayed reminder
    expect(out).toMatch(/✓ fan_out #\d+ \(attempt 1\)/);
    const image = out.match(/↻ resize_image #(\d+) retries in 200 ms/)?.[1];
    expect(image, out).toBeDefined();
    expect(out).toContain(`✓ resize_image #${image} (attempt 2)`);
    expect(out).toMatch(/✓ reminder #\d+ \(attempt 1\)/);
    expect(out).toMatch(/reminder ran \d+ ms after it was pushed with delayMs 1000/);
    expect(out).toContain('1000 follower notifications written');
    const beats = Number(out.match(/the cron schedule fired (\d+) times/)?.[1]);
    expect(beats).toBeGreaterThanOrEqual(2);
    expect(out.match(/✓ heartbeat #/g)?.length).toBeGreaterThanOrEqual(2);

    // the views' output
    expect(out).toContain(`SELECT * FROM ${DEMO_SCHEMA}.queue_summary;`);
    expect(out).toContain(`FROM ${DEMO_SCHEMA}.task_history GROUP BY 1, 2;`);
    const history = out.slice(out.indexOf('task_history GROUP BY'));
    const historyLines = lines(history);
    expect(historyLines[1]?.split(/\s+/)).toEqual([
      'name',
      'state',
      'count',
      'max_attempts',
      'avg_wait_ms',
      'avg_run_ms',
    ]);
    const historyRows = new Map(
      historyLines
        .slice(3)
        .map((line) => line.split(/\s+/))
        .filter((cells) => cells.length === 6)
        .map(([name, state, count, maxAttempts]) => [name, { state, count, maxAttempts }]),
    );
    expect(historyRows.get('send_welcome_email')).toEqual({
      state: 'succeeded',
      count: '1',
      maxAttempts: '1',
    });
    expect(historyRows.get('notify_follower')).toEqual({
      state: 'succeeded',
      count: '1000',
      maxAttempts: '1',
    });
    expect(historyRows.get('fan_out')).toEqual({ state: 'succeeded', count: '1', maxAttempts: '1' });
    expect(historyRows.get('resize_image')).toEqual({ state: 'succeeded', count: '1', maxAttempts: '2' });
    expect(historyRows.get('reminder')).toEqual({ state: 'succeeded', count: '1', maxAttempts: '1' });
    expect(historyRows.get('heartbeat')?.state).toBe('succeeded');
    expect(lines(out).at(-1)).toBe('Done: every committed task ran once; the rolled-back one never existed.');

    expect(await schemaExists(DEMO_SCHEMA)).toBe(false);
    expect(await snapshot()).toEqual(before);
  }, 120_000);

  it('--keep leaves its schema with the tasks it ran, for psql', async () => {
    const result = await pgtq(['demo', '--keep'], env, 90_000);
    expect(result.code, described(result)).toBe(0);
    const ghost = result.stdout.match(/task #(\d+) exists after rollback: false/)?.[1];
    expect(ghost, result.stdout).toBeDefined();

    expect(await schemaExists(DEMO_SCHEMA)).toBe(true);
    const demo = async (sql: string, values: unknown[] = []) =>
      (await db.pool.query(sql.replaceAll(':demo', `"${DEMO_SCHEMA}"`), values)).rows;
    expect(await demo('SELECT email FROM :demo.users')).toEqual([{ email: 'ada@example.com' }]);
    expect(await demo('SELECT count(*)::int AS n FROM :demo.notifications')).toEqual([{ n: 1000 }]);
    expect(
      await demo(
        `SELECT name, state::text, count(*)::int AS n FROM :demo.finished_tasks
         WHERE name <> 'heartbeat' GROUP BY name, state ORDER BY name`,
      ),
    ).toEqual([
      { name: 'fan_out', state: 'succeeded', n: 1 },
      { name: 'notify_follower', state: 'succeeded', n: 1000 },
      { name: 'reminder', state: 'succeeded', n: 1 },
      { name: 'resize_image', state: 'succeeded', n: 1 },
      { name: 'send_welcome_email', state: 'succeeded', n: 1 },
    ]);
    expect(
      await demo('SELECT args FROM :demo.finished_tasks WHERE name = $1', ['send_welcome_email']),
    ).toEqual([{ args: ['ada@example.com'] }]);
    expect(await demo('SELECT 1 FROM :demo.all_tasks WHERE id = $1', [ghost])).toEqual([]);
    // the heartbeat schedule was removed
    expect(await demo('SELECT name FROM :demo.schedules')).toEqual([]);

    await dropSchema(DEMO_SCHEMA);
  }, 120_000);

  it('--dashboard serves the dashboard over the demo while it runs, and after it until SIGTERM', async () => {
    const run = startNode([cli, 'demo', '--dashboard', '--port', '0'], env, { timeoutMs: 90_000 });
    const url = await waitFor(() => run.output().match(/^Dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m)?.[1], {
      timeoutMs: 30_000,
    });
    expect((await fetch(`${url}api/config`)).status).toBe(200);
    await waitFor(() => run.output().includes('The dashboard stays up at'), { timeoutMs: 60_000 });
    const overview = (await (await fetch(`${url}api/tasks?name=notify_follower&limit=1`)).json()) as {
      tasks: { state: string }[];
    };
    expect(overview.tasks).toEqual([expect.objectContaining({ state: 'succeeded' })]);
    run.child.kill('SIGTERM');
    const result = await run.finished;
    expect(result.code, described(result)).toBe(0);
    expect(await schemaExists(DEMO_SCHEMA)).toBe(false);
  }, 120_000);
});

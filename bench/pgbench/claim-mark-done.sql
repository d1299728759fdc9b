-- (a) Claim 100 ready tasks, skipping rows other clients hold, and mark them done in place.
WITH picked AS (
  SELECT id FROM tasks
  WHERE state = 'ready' AND queue = 'bench'
  ORDER BY priority DESC, run_at, id
  LIMIT 100
  FOR UPDATE SKIP LOCKED
)
UPDATE tasks AS t
SET state = 'done', attempts = t.attempts + 1, started_at = now(), finished_at = now()
FROM picked
WHERE t.id = picked.id;

-- Whether a queue's scheduled tasks are overdue with no scheduler alive to
-- promote them: how many (up to 1000) were due more than $2 ms ago, and whether
-- any scheduler of the schema (schedulers serve every queue) is alive.
-- $1 text     queue
-- $2 integer  grace, ms
SELECT
  (SELECT count(*)
   FROM (SELECT 1 FROM :schema.tasks
         WHERE state = 'scheduled' AND queue = $1
           AND run_at < now() - make_interval(secs => $2::integer / 1000.0)
         ORDER BY run_at -- walks the due index from the oldest, and stops early
         LIMIT 1000) AS overdue)::integer AS overdue,
  EXISTS (SELECT 1 FROM :schema.processes WHERE kind = 'scheduler' AND expires_at > now()) AS scheduler_alive

-- Resumes a queue ($2 null) or one task name of it; true if it was paused.
-- $1 text  queue
-- $2 text  task name, or null for the whole queue
SELECT :schema.resume_queue($1, $2) AS changed

-- Removes a schedule and its fire history; returns whether it existed.
-- $1 text  queue
-- $2 text  schedule name
SELECT :schema.unschedule($1, $2) AS removed

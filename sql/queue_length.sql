-- Pending (scheduled or ready) tasks of a queue.
-- $1 text  queue
SELECT :schema.queue_length($1)::integer AS length

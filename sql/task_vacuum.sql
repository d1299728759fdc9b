-- Asked for by compact_tasks (see migrations/) when dead rows of `tasks` are in the
-- way and autovacuum has not removed them for a while (or is off). Never waits for
-- a lock: a vacuum already running, or a transaction that locked the table, wins.
VACUUM (SKIP_LOCKED) :schema.tasks

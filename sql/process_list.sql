-- The workers and schedulers alive now (every queue of the schema), from their heartbeats.
SELECT kind, queue, id, hostname, pid, running::int AS running, started_at, heartbeat_at,
       round(extract(epoch FROM silent_for) * 1000)::int AS silent_ms, details
FROM :schema.live_processes
ORDER BY kind, queue, started_at

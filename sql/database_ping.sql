-- Whether the database answers: the dashboard's /healthz.
SELECT 1 AS ok

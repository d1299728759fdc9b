-- Makes sure the daily history partitions from day $1 (UTC) for $2 days exist.
-- $1 date     first day (null: today, UTC)
-- $2 integer  number of days
SELECT :schema.create_history_partitions(coalesce($1::date, (now() AT TIME ZONE 'UTC')::date), $2::integer) AS created

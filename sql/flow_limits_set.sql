-- Sets the limits of one task name, or removes them when both are null (see
-- set_flow_limits in migrations/).
-- $1 text     queue
-- $2 text     task name
-- $3 integer  group concurrency (null: none)
-- $4 integer  rate limit: starts per period (null: none)
-- $5 integer  rate period, ms
-- $6 boolean  the rate limit holds per group
SELECT :schema.set_flow_limits($1, $2, $3::integer, $4::integer,
                               make_interval(secs => $5::integer / 1000.0), $6::boolean)

-- Sets the limits of task names, or removes those whose limits are both null
-- (see set_flow_limits in migrations/), in one statement.
-- $1 text       queue
-- $2 text[]     task names
-- $3 integer[]  group concurrency of each (null: none)
-- $4 integer[]  rate limit of each: starts per period (null: none)
-- $5 integer[]  rate period of each, ms
-- $6 boolean[]  whether each rate limit holds per group
SELECT count(:schema.set_flow_limits($1, x.name, x.group_concurrency, x.rate_limit,
                                     make_interval(secs => x.period_ms / 1000.0), x.per_group)) AS set
FROM unnest($2::text[], $3::integer[], $4::integer[], $5::integer[], $6::boolean[])
  AS x(name, group_concurrency, rate_limit, period_ms, per_group)

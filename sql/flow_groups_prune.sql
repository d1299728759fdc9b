-- Removes the rows of groups without tasks (see prune_flow_groups in migrations/).
-- $1 integer  at most this many
SELECT :schema.prune_flow_groups($1::integer) AS pruned

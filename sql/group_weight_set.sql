-- Sets a group's weight in its queue's turns (see set_group_weight in migrations/).
-- $1 text     queue
-- $2 text     group
-- $3 float8   weight (1 removes it)
SELECT :schema.set_group_weight($1, $2, $3::float8)

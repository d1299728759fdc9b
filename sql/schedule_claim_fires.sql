-- Records fire times of a schedule and returns those not recorded before: only
-- those get a task (schedule_fire, in the same transaction). The primary key on
-- (queue, name, fire_at) makes each fire time enqueue one task at most.
-- $1 text           queue
-- $2 text           schedule name
-- $3 timestamptz[]  fire times
INSERT INTO :schema.schedule_fires (queue, name, fire_at)
SELECT $1, $2, f.fire_at FROM unnest($3::timestamptz[]) AS f(fire_at)
ON CONFLICT DO NOTHING
RETURNING fire_at

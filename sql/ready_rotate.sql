-- One pass over the ready ring: truncates the segments no live task points from,
-- and moves insertion on to the next segment; see rotate_ready in migrations/.
SELECT current_segment AS segment, truncated FROM :schema.rotate_ready()

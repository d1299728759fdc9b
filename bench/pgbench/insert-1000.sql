-- (c) Push 1000 tasks in one INSERT … SELECT per transaction.
INSERT INTO tasks (queue, name, args, state)
SELECT 'bench', 'noop', jsonb_build_array(i), 'ready'
FROM generate_series(1, 1000) AS i;

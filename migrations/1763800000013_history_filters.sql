-- Up Migration
--
-- Finding tasks in history by what users filter on (listTasks, pgtq tasks, the
-- dashboard): a queue and task name, a key, a group. Each index gives the id
-- order the lists page by, so a page reads its own rows and stops, however long
-- the history and however rare the match. The key and group indexes are partial:
-- tasks without one pay nothing for them. On a long history, expect this
-- migration to hold writes to history while it builds (an index on a
-- partitioned table cannot be built concurrently).

CREATE INDEX finished_tasks_name_idx ON finished_tasks (queue, name, id);
CREATE INDEX finished_tasks_key_idx ON finished_tasks (key, id) WHERE key IS NOT NULL;
CREATE INDEX finished_tasks_group_idx ON finished_tasks (group_key, id) WHERE group_key IS NOT NULL;

-- Down Migration
DROP INDEX finished_tasks_group_idx;
DROP INDEX finished_tasks_key_idx;
DROP INDEX finished_tasks_name_idx;

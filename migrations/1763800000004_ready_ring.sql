-- Up Migration
--
-- The ready ring: what claims search, kept apart from `tasks` so that its dead
-- row versions can be thrown away by TRUNCATE instead of VACUUM.
--
-- While the oldest snapshot in the database is held (a long report, a forgotten
-- BEGIN, a replica with hot_standby_feedback), vacuum removes nothing that died
-- after it. A claim that searched a partial index of `tasks` then walked the
-- dead entry of every task claimed since, so its cost grew with rate × time.
-- Here each ready task has one row in `ready`, in the ring's current segment; a
-- claim deletes the rows it takes. The scheduler moves insertion on to the next
-- segment once the current one has grown to 256 kB, and TRUNCATEs the segments
-- that no longer hold a live row. TRUNCATE needs a lock, not an old enough
-- horizon, so a claim walks at most the dead rows of the segments still in use,
-- a few thousand, whatever the horizon.
--
-- A row in `ready` is a pointer to a ready task, at the task's place in the
-- claim order. Triggers keep the two in step: a task that becomes ready (or
-- moves in the order) gets a pointer, one that stops being ready other than by
-- a claim (cancelled, deleted, rescheduled) loses it.

CREATE TABLE ready (
  segment  smallint NOT NULL,
  id       bigint NOT NULL,
  queue    text NOT NULL,
  name     text NOT NULL,
  priority integer NOT NULL,
  run_at   timestamptz NOT NULL
) PARTITION BY LIST (segment);

-- The claim's order, per segment; a claim merges the segments.
CREATE INDEX ready_claim_idx ON ready (queue, priority DESC, run_at, id);

-- Four segments: every claim merges them all, so each one more costs every
-- claim; with fewer, a backlog still waiting in an old segment soon leaves no
-- empty one to move on to (then insertion stays where it is, as without a ring).
-- The segment new ready tasks go to: its last_value. A sequence, not a row, so
-- that moving it on leaves no dead row version for every push to step over.
CREATE SEQUENCE ready_segment AS smallint MINVALUE 0 MAXVALUE 3 START 0 CYCLE;
SELECT setval('ready_segment', 0, true);

DO $$
BEGIN
  FOR segment IN 0 .. 3 LOOP
    EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.ready FOR VALUES IN (%s)',
                   current_schema(), 'ready_' || segment, current_schema(), segment);
  END LOOP;
END
$$;

-- Pointers are written by triggers, so that every statement that makes a task
-- ready (a push, a promotion, a retry, a rescue, a release, an admin action)
-- writes one in its transaction. Inserts: one statement-level trigger, one
-- INSERT of pointers per push however many tasks. Updates and deletes: row
-- triggers whose WHEN keeps them away from claims, heartbeats and finishes.
-- SECURITY DEFINER: a role that may push (insert into tasks) needs no rights on
-- the ring, which stays an internal detail.
CREATE FUNCTION ready_after_insert() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  INSERT INTO ready (segment, id, queue, name, priority, run_at)
  SELECT ring.last_value, t.id, t.queue, t.name, t.priority, t.run_at
  FROM added AS t, ready_segment AS ring
  WHERE t.state = 'ready';
  RETURN NULL;
END
$$;

-- Removes the pointer of OLD, found by its exact key in the claim index. One a
-- claim holds is skipped, not waited on (the claim holds it while it waits for
-- the task's row, which this statement holds): that claim deletes it itself and,
-- the task no longer being ready, takes nothing.
CREATE FUNCTION ready_after_update_or_delete() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
  IF OLD.state = 'ready' THEN
    PERFORM FROM ready AS r
    WHERE r.queue = OLD.queue AND r.priority = OLD.priority AND r.run_at = OLD.run_at AND r.id = OLD.id
    FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      DELETE FROM ready AS r
      WHERE r.queue = OLD.queue AND r.priority = OLD.priority AND r.run_at = OLD.run_at AND r.id = OLD.id;
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.state = 'ready' THEN
    INSERT INTO ready (segment, id, queue, name, priority, run_at)
    SELECT ring.last_value, NEW.id, NEW.queue, NEW.name, NEW.priority, NEW.run_at FROM ready_segment AS ring;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER tasks_ready_insert AFTER INSERT ON tasks
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION ready_after_insert();
-- Not for a claim (ready to running), whose statement deletes the pointer itself.
CREATE TRIGGER tasks_ready_update AFTER UPDATE ON tasks
  FOR EACH ROW
  WHEN ((OLD.state = 'ready' OR NEW.state = 'ready') AND NEW.state <> 'running'
        AND (OLD.state <> NEW.state OR OLD.run_at <> NEW.run_at OR OLD.priority <> NEW.priority))
  EXECUTE FUNCTION ready_after_update_or_delete();
CREATE TRIGGER tasks_ready_delete AFTER DELETE ON tasks
  FOR EACH ROW WHEN (OLD.state = 'ready') EXECUTE FUNCTION ready_after_update_or_delete();

INSERT INTO ready (segment, id, queue, name, priority, run_at)
SELECT 0, id, queue, name, priority, run_at FROM tasks WHERE state = 'ready';

-- Claims now search `ready`; the partial index of ready tasks is not needed.
DROP INDEX tasks_claim_idx;

-- Truncates every segment but the current one that holds no live row, then
-- moves insertion on to the next segment if the current one has grown to
-- `min_bytes` and the next one is empty. Run by the scheduler every second or
-- so; safe to run from several at once (an advisory lock serialises them).
-- A segment is truncated only under its ACCESS EXCLUSIVE lock, taken with a
-- short lock_timeout: a push still open on it, or any long transaction that read
-- it, holds the lock off, and the segment waits for a later pass. Claims queue
-- behind that lock for at most the timeout.
-- Why a size and not every pass: a claim walks at most about `min_bytes` of dead
-- pointers per segment (256 kB: some 3,000), and each truncation makes every
-- connection plan the claim again (a millisecond or two, once), which a quiet
-- queue need not pay every second.
-- Returns the current segment after the pass and how many were truncated.
CREATE FUNCTION rotate_ready(lock_timeout_ms integer DEFAULT 50, min_bytes bigint DEFAULT 262144)
RETURNS TABLE (current_segment smallint, truncated integer)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  segments constant smallint := (SELECT max_value FROM pg_sequences
                                 WHERE schemaname = current_schema() AND sequencename = 'ready_segment') + 1;
  segment_table text;
  empty boolean;
BEGIN
  truncated := 0;
  PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.ready'));
  current_segment := (SELECT last_value FROM ready_segment);
  PERFORM set_config('lock_timeout', lock_timeout_ms || 'ms', true);
  FOR segment IN 0 .. segments - 1 LOOP
    segment_table := format('%I.%I', current_schema(), 'ready_' || segment);
    CONTINUE WHEN segment = current_segment OR pg_relation_size(segment_table) = 0;
    BEGIN
      EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', segment_table);
      -- A new snapshot, taken under the lock: every push into it has ended.
      EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s)', segment_table) INTO empty;
      IF empty THEN
        EXECUTE format('TRUNCATE %s', segment_table);
        truncated := truncated + 1;
      END IF;
    EXCEPTION WHEN lock_not_available THEN
      NULL;
    END;
  END LOOP;
  -- Last, as nextval is not undone by a rollback.
  IF pg_relation_size(format('%I.%I', current_schema(), 'ready_' || current_segment)) >= greatest(min_bytes, 1)
     AND pg_relation_size(format('%I.%I', current_schema(), 'ready_' || (current_segment + 1) % segments)) = 0 THEN
    current_segment := nextval('ready_segment');
  END IF;
  RETURN NEXT;
END
$$;

-- Down Migration
DROP FUNCTION rotate_ready(integer, bigint);
CREATE INDEX tasks_claim_idx ON tasks (queue, priority DESC, run_at, id) WHERE state = 'ready';
DROP TRIGGER tasks_ready_delete ON tasks;
DROP TRIGGER tasks_ready_update ON tasks;
DROP TRIGGER tasks_ready_insert ON tasks;
DROP FUNCTION ready_after_update_or_delete();
DROP FUNCTION ready_after_insert();
DROP SEQUENCE ready_segment;
DROP TABLE ready;

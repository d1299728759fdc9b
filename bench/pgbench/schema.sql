-- The tables the pgbench scripts run against: pgtq's hot table and history, reduced to what a
-- claim, a finish and a push touch. Run with search_path set to the benchmark's own schema.
CREATE TABLE tasks (
  id          bigserial PRIMARY KEY,
  queue       text NOT NULL,
  name        text NOT NULL,
  args        jsonb NOT NULL DEFAULT '[]',
  state       text NOT NULL,
  priority    integer NOT NULL DEFAULT 0,
  run_at      timestamptz NOT NULL DEFAULT now(),
  attempts    integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  started_at  timestamptz,
  finished_at timestamptz
) WITH (fillfactor = 70);
CREATE INDEX tasks_claim_idx ON tasks (queue, priority DESC, run_at, id) WHERE state = 'ready';

CREATE TABLE history (
  id          bigint NOT NULL,
  queue       text NOT NULL,
  name        text NOT NULL,
  args        jsonb NOT NULL,
  state       text NOT NULL,
  priority    integer NOT NULL,
  run_at      timestamptz NOT NULL,
  attempts    integer NOT NULL,
  created_at  timestamptz NOT NULL,
  started_at  timestamptz,
  finished_at timestamptz NOT NULL
);
CREATE INDEX history_id_idx ON history (id);
CREATE INDEX history_finished_at_idx ON history (finished_at);

-- Up Migration
--
-- The W3C trace context of the push that made a task, for an app using
-- OpenTelemetry: its worker continues that trace when it runs the task, however
-- much later. Written only while a tracer records the push (without one, this
-- table stays empty and costs nothing); rows of tasks that have left the queue
-- are pruned by the scheduler.

CREATE TABLE task_traces (
  task_id     bigint PRIMARY KEY,
  traceparent text NOT NULL,
  tracestate  text
);

-- Down Migration
DROP TABLE task_traces;

-- Up Migration
--
-- HTTP tasks from SQL, and push() keeping null fields inside its arguments.
--
-- push_http stores a task named 'pgtq.http' whose one argument is the request; a
-- worker started with the `http` option sends it (see the README, HTTP tasks).
-- What a worker would refuse is refused here, at the push: a URL that is not
-- http(s), an unknown method, headers that are not an object of strings, a body
-- with GET or HEAD, a timeout out of range.
--
-- push() built its task with jsonb_strip_nulls, which reaches into the arguments:
-- push('q', 'n', '[{"a": null}]') stored [{}]. Only the task's own fields left
-- unset are dropped now.

-- The object without its top-level null fields.
CREATE FUNCTION without_null_fields(o jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') FROM jsonb_each(o) AS e WHERE e.value <> 'null'
$$;

CREATE OR REPLACE FUNCTION push(
  queue text, name text, args jsonb DEFAULT '[]',
  run_at timestamptz DEFAULT NULL, priority integer DEFAULT 0,
  max_attempts integer DEFAULT 10, key text DEFAULT NULL,
  group_key text DEFAULT NULL, ttl interval DEFAULT NULL
) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  SELECT id FROM push_many(jsonb_build_array(without_null_fields(jsonb_build_object(
    'queue', queue, 'name', name, 'args', args, 'run_at', run_at,
    'priority', priority, 'max_attempts', max_attempts, 'key', key,
    'group_key', group_key, 'ttl_ms', floor(extract(epoch FROM ttl) * 1000)::bigint))))
$$;

CREATE FUNCTION push_http(
  queue text, url text, method text DEFAULT 'POST', body jsonb DEFAULT NULL, headers jsonb DEFAULT NULL,
  timeout_ms integer DEFAULT NULL, run_at timestamptz DEFAULT NULL, priority integer DEFAULT 0,
  max_attempts integer DEFAULT 10, key text DEFAULT NULL, group_key text DEFAULT NULL, ttl interval DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  verb constant text := upper(coalesce(method, 'POST'));
BEGIN
  IF url IS NULL OR url !~* '^https?://[^/?#\s]+' OR length(url) > 8000 THEN
    RAISE EXCEPTION 'pgtq: push_http: expected an http: or https: URL, got %', coalesce(quote_literal(left(url, 200)), 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF verb NOT IN ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE') THEN
    RAISE EXCEPTION 'pgtq: push_http: unknown method %', quote_literal(method)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF body IS NOT NULL AND verb IN ('GET', 'HEAD') THEN
    RAISE EXCEPTION 'pgtq: push_http: a % request has no body', verb USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF headers IS NOT NULL AND (jsonb_typeof(headers) <> 'object' OR EXISTS (
       SELECT FROM jsonb_each(headers) AS h
       WHERE jsonb_typeof(h.value) <> 'string' OR h.key !~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]+$'
          OR h.value #>> '{}' ~ '[\r\n]')) THEN
    RAISE EXCEPTION 'pgtq: push_http: headers must be an object of header names to strings without CR or LF'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF timeout_ms IS NOT NULL AND (timeout_ms < 1 OR timeout_ms > 3600000) THEN
    RAISE EXCEPTION 'pgtq: push_http: timeout_ms must be from 1 to 3600000, got %', timeout_ms
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- The body is kept whatever it holds (a JSON null included): only unset fields are left out.
  RETURN push(queue, 'pgtq.http',
              jsonb_build_array(without_null_fields(jsonb_build_object(
                'url', url, 'method', verb, 'headers', headers, 'timeoutMs', timeout_ms))
                || CASE WHEN body IS NULL THEN '{}' ELSE jsonb_build_object('body', body) END),
              run_at, priority, max_attempts, key, group_key, ttl);
END
$$;

-- Down Migration
DROP FUNCTION push_http(text, text, text, jsonb, jsonb, integer, timestamptz, integer, integer, text, text, interval);
CREATE OR REPLACE FUNCTION push(
  queue text, name text, args jsonb DEFAULT '[]',
  run_at timestamptz DEFAULT NULL, priority integer DEFAULT 0,
  max_attempts integer DEFAULT 10, key text DEFAULT NULL,
  group_key text DEFAULT NULL, ttl interval DEFAULT NULL
) RETURNS bigint
LANGUAGE sql SET search_path FROM CURRENT AS $$
  SELECT id FROM push_many(jsonb_build_array(jsonb_strip_nulls(jsonb_build_object(
    'queue', queue, 'name', name, 'args', args, 'run_at', run_at,
    'priority', priority, 'max_attempts', max_attempts, 'key', key,
    'group_key', group_key, 'ttl_ms', floor(extract(epoch FROM ttl) * 1000)::bigint))))
$$;
DROP FUNCTION without_null_fields(jsonb);

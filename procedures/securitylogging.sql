-- authtrail: audit table and logging procedure for PostgreSQL 12+ and the embedded PGlite store.
--
-- Objects are created in the first schema of search_path (authtrail sets it to the schema of
-- security.logging.proc, e.g. dbo for dbo.securitylogging). Re-running the file is safe.
--
-- Differences from Showcase's procedure, on purpose:
--   * type is varchar(32): 'SESSIONTIMEOUT' has 14 characters and does not fit Showcase's nvarchar(10).
--   * event_id is unique and a repeated id is ignored, so a replayed delivery never stores an event twice.
--   * time is when the event happened (<eventtime> of the session context), not when it was delivered.

CREATE TABLE IF NOT EXISTS securitylog (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id        uuid UNIQUE,
  time            timestamptz NOT NULL DEFAULT now(),
  type            varchar(32) NOT NULL,
  username        text NOT NULL DEFAULT '',
  ip              text NOT NULL DEFAULT '',
  session_id      text NOT NULL DEFAULT '',
  data            xml NOT NULL,
  session_context xml NOT NULL
);

CREATE INDEX IF NOT EXISTS securitylog_time_idx ON securitylog (time DESC, id DESC);

-- Called as CALL securitylogging(session_context, data, type), positionally, as Showcase did.
-- Any procedure with this signature can replace it; authtrail never writes the table itself.
-- SET search_path FROM CURRENT pins the schema it was created in, whatever the caller's search_path.
CREATE OR REPLACE PROCEDURE securitylogging(session_context xml, data xml, type varchar)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
#variable_conflict use_variable
DECLARE
  ctx record;
  evt record;
BEGIN
  -- XMLTABLE, not xpath(): xpath() returns text nodes still entity-escaped ("a &amp; b").
  SELECT * INTO ctx FROM XMLTABLE('/sessioncontext' PASSING session_context COLUMNS
    username   text PATH 'username',
    ip         text PATH 'ip',
    eventid    text PATH 'eventid',
    eventtime  text PATH 'eventtime');
  SELECT * INTO evt FROM XMLTABLE('/data' PASSING data COLUMNS
    session_id text PATH 'HttpSessionId',
    username   text PATH 'UserName',
    tried      text PATH 'errorData/username',
    ip         text PATH 'IP');
  INSERT INTO securitylog (event_id, time, type, username, ip, session_id, data, session_context)
  VALUES (
    nullif(ctx.eventid, '')::uuid,
    coalesce(nullif(ctx.eventtime, '')::timestamptz, now()),
    type,
    coalesce(nullif(ctx.username, ''), nullif(evt.username, ''), evt.tried, ''),
    coalesce(nullif(ctx.ip, ''), evt.ip, ''),
    coalesce(evt.session_id, ''),
    data,
    session_context)
  ON CONFLICT (event_id) DO NOTHING;
END
$$;

-- One round trip for many events: calls the named logging procedure once per element, in order, so
-- a batch costs one statement instead of one per event (half the cost per event in PGlite). Taking
-- the procedure as regproc means a user's own procedure of the same signature is called the same way.
CREATE OR REPLACE PROCEDURE securitylogging_batch(proc regproc, session_contexts xml[], datas xml[], types varchar[])
LANGUAGE plpgsql AS $$
BEGIN
  FOR i IN 1 .. coalesce(array_length(types, 1), 0) LOOP
    EXECUTE format('CALL %s($1, $2, $3)', proc) USING session_contexts[i], datas[i], types[i];
  END LOOP;
END
$$;

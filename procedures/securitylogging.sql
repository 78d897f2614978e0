-- authtrail: audit table and logging procedures for PostgreSQL 15+ and the embedded PGlite store.
--
-- Deploy:  psql -v ON_ERROR_STOP=1 -c 'CREATE SCHEMA IF NOT EXISTS dbo' -c 'SET search_path TO dbo' -f procedures/securitylogging.sql
-- Objects are created in the first schema of search_path (authtrail sets it to the schema of
-- security.logging.proc, e.g. dbo for dbo.securitylogging). Re-running the file is safe.
--
-- Differences from Showcase's procedure, on purpose:
--   * type is varchar(32): 'SESSIONTIMEOUT' has 14 characters and does not fit Showcase's nvarchar(10).
--   * a repeated event id (from <eventid>) is ignored, so a replayed delivery never stores an event twice.
--   * time is when the event happened (<eventtime> of the session context), not when it was delivered.
--   * the procedures are SECURITY DEFINER: the writer role may call them and insert, never UPDATE or DELETE.

-- Partitioned by month so that retention drops whole partitions instead of deleting row by row.
-- Unique keys of a partitioned table must contain the partition key; a replayed event carries the same
-- <eventtime>, so (event_id, time) still identifies it.
CREATE TABLE IF NOT EXISTS securitylog (
  id              bigint GENERATED ALWAYS AS IDENTITY,
  event_id        uuid,
  time            timestamptz NOT NULL DEFAULT now(),
  type            varchar(32) NOT NULL,
  username        text NOT NULL DEFAULT '',
  ip              text NOT NULL DEFAULT '',
  session_id      text NOT NULL DEFAULT '',
  data            xml NOT NULL,
  session_context xml NOT NULL,
  PRIMARY KEY (id, time),
  UNIQUE (event_id, time)
) PARTITION BY RANGE (time);

-- Catches rows for months without a partition (a clock far off, a maintenance call missed): never lost.
CREATE TABLE IF NOT EXISTS securitylog_default PARTITION OF securitylog DEFAULT;

-- For the admin's questions: newest first, by user, by type, by address.
CREATE INDEX IF NOT EXISTS securitylog_time_idx ON securitylog (time DESC, id DESC);
CREATE INDEX IF NOT EXISTS securitylog_user_idx ON securitylog (username, time DESC);
CREATE INDEX IF NOT EXISTS securitylog_type_idx ON securitylog (type, time DESC);
CREATE INDEX IF NOT EXISTS securitylog_ip_idx ON securitylog (ip, time DESC);

-- Reads a stored address as inet for the review's network filters (ip <<= '10.0.0.0/8'), and NULL for
-- anything that is not an address: the column holds whatever the request gave, and a hostile or empty
-- value must never make a query fail. An IPv4-mapped IPv6 address (::ffff:10.1.2.3, how Node reports an
-- IPv4 client of a dual-stack socket) is read as the IPv4 address. The cheap pattern test comes first,
-- so only plausible addresses pay for the exception block's subtransaction. Not PARALLEL SAFE: a
-- subtransaction cannot start in a parallel operation ("cannot start subtransactions during a parallel
-- operation", met building the index below in parallel).
CREATE OR REPLACE FUNCTION securitylog_inet(address text) RETURNS inet
LANGUAGE plpgsql IMMUTABLE STRICT
AS $$
BEGIN
  IF address !~ '^[0-9A-Fa-f:.]{2,45}$' THEN
    RETURN NULL;
  END IF;
  IF address ~* '^::ffff:[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' THEN
    address := substr(address, 8);
  END IF;
  BEGIN
    RETURN address::inet;
  EXCEPTION WHEN others THEN
    RETURN NULL;
  END;
END
$$;

-- Network filters: without it, a /16 on 1,000,000 rows walked the time index testing every row
-- (120 ms; 5 s for a rare IPv6 network); with it, about 35 ms and 0.1 ms (bench/audit-query.ts).
CREATE INDEX IF NOT EXISTS securitylog_inet_idx ON securitylog (securitylog_inet(ip));

-- Creates the monthly partitions from this month to months_ahead months ahead (UTC). authtrail calls
-- it at startup and daily; a month whose rows already sit in the default partition is skipped with a
-- warning rather than failing.
CREATE OR REPLACE PROCEDURE securitylog_add_partitions(months_ahead int DEFAULT 3)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
  month date := date_trunc('month', now() AT TIME ZONE 'UTC')::date;
  partition text;
BEGIN
  FOR i IN 0 .. months_ahead LOOP
    partition := format('securitylog_%s', to_char(month, 'YYYY_MM'));
    IF to_regclass(partition) IS NULL THEN
      BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF securitylog FOR VALUES FROM (%L) TO (%L)',
          partition, month::text || ' 00:00:00+00', (month + interval '1 month')::date::text || ' 00:00:00+00');
      EXCEPTION WHEN others THEN
        RAISE WARNING 'authtrail: could not create partition %: %', partition, SQLERRM;
      END;
    END IF;
    month := (month + interval '1 month')::date;
  END LOOP;
END
$$;

CALL securitylog_add_partitions(3);

-- Stores many events in one statement. authtrail calls <procedure>_batch when the database has one with
-- this signature, and the procedure itself once per event otherwise. Besides Showcase's three arguments
-- it takes the columns authtrail already knows for each event (the same values securitylogging reads
-- from the XML), so a batch costs no more XML parsing than COPY would. If you change the body of
-- securitylogging, change or drop this one too.
CREATE OR REPLACE PROCEDURE securitylogging_batch(
  session_contexts xml[], datas xml[], types varchar[],
  event_ids uuid[], times timestamptz[], usernames text[], ips text[], session_ids text[])
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
  INSERT INTO securitylog (event_id, time, type, username, ip, session_id, data, session_context)
  SELECT e.event_id, coalesce(e.time, now()), e.type, coalesce(e.username, ''), coalesce(e.ip, ''), coalesce(e.session_id, ''), e.data, e.ctx
  FROM unnest(event_ids, times, types, usernames, ips, session_ids, datas, session_contexts)
    AS e(event_id, time, type, username, ip, session_id, data, ctx)
  ON CONFLICT (event_id, time) DO NOTHING;
END
$$;

-- Called as CALL securitylogging(session_context, data, type), positionally, as Showcase did. Any
-- procedure with this signature can replace it; authtrail never writes the table itself.
CREATE OR REPLACE PROCEDURE securitylogging(session_context xml, data xml, type varchar)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
DECLARE
  ctx record;
  d record;
BEGIN
  -- XMLTABLE, not xpath(): xpath() returns text nodes still entity-escaped ("a &amp; b").
  SELECT * INTO ctx FROM XMLTABLE('/sessioncontext' PASSING session_context COLUMNS
    username  text PATH 'username',
    ip        text PATH 'ip',
    sessionid text PATH 'sessionid',
    eventid   text PATH 'eventid',
    eventtime text PATH 'eventtime');
  SELECT * INTO d FROM XMLTABLE('/data' PASSING data COLUMNS
    session_id text PATH 'HttpSessionId',
    username   text PATH 'UserName',
    tried      text PATH 'errorData/username',
    ip         text PATH 'IP');
  CALL securitylogging_batch(
    ARRAY[session_context], ARRAY[data], ARRAY[type],
    ARRAY[nullif(ctx.eventid, '')::uuid],
    ARRAY[coalesce(nullif(ctx.eventtime, '')::timestamptz, now())],
    -- After a LOGINERROR nobody is signed in: the name that was tried is in errorData/username.
    ARRAY[coalesce(nullif(ctx.username, ''), nullif(d.username, ''), d.tried, '')],
    ARRAY[coalesce(nullif(ctx.ip, ''), d.ip, '')],
    ARRAY[coalesce(d.session_id, ctx.sessionid, '')]);
END
$$;

-- Tamper evidence (security.logging.chain = on; docs/tamper-evidence.md). Every event authtrail delivers
-- gets a link in a hash chain: hash = HMAC-SHA256(key, prev_hash || the row's canonical text), computed
-- by the app, which holds the key, and inserted by the same call that inserts the row. A chain belongs
-- to one delivery lane of one process, so concurrent connections and instances never wait on each
-- other. A link is inserted even when the row already existed (a replay): duplicate says so, and the
-- link of the first delivery is the one whose hash covers the row. Only INSERTs: the writer role never
-- needs UPDATE or DELETE here either.
CREATE TABLE IF NOT EXISTS securitylog_chain (
  chain_id    uuid NOT NULL,
  seq         bigint NOT NULL,
  event_id    uuid NOT NULL,
  time        timestamptz NOT NULL,         -- the event's time, as in its row
  type        varchar(32) NOT NULL,
  prev_hash   text NOT NULL,
  hash        text NOT NULL,
  duplicate   boolean NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (chain_id, seq)
);
CREATE INDEX IF NOT EXISTS securitylog_chain_event_idx ON securitylog_chain (event_id);

-- Ed25519-signed statements "chain C reached seq S with hash H", so that removing the tail of a chain
-- shows; final marks the checkpoint written when the chain was closed.
CREATE TABLE IF NOT EXISTS securitylog_checkpoint (
  chain_id  uuid NOT NULL,
  seq       bigint NOT NULL,
  hash      text NOT NULL,
  time      timestamptz NOT NULL,
  key_id    text NOT NULL,
  signature text NOT NULL,
  final     boolean NOT NULL,
  PRIMARY KEY (chain_id, seq, final)
);

-- securitylogging_batch with chain links and an optional checkpoint: stores the events, a link for each
-- (even one whose row already existed), and the checkpoint, in one transaction. authtrail calls
-- <procedure>_chained when chaining is on. If you change the body of securitylogging, change this too.
CREATE OR REPLACE PROCEDURE securitylogging_chained(
  session_contexts xml[], datas xml[], types varchar[],
  event_ids uuid[], times timestamptz[], usernames text[], ips text[], session_ids text[],
  chain uuid, seqs bigint[], prev_hashes text[], hashes text[],
  checkpoint_seq bigint, checkpoint_hash text, checkpoint_time timestamptz, checkpoint_key text, checkpoint_signature text, checkpoint_final boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
  WITH e AS (
    SELECT * FROM unnest(event_ids, times, types, usernames, ips, session_ids, datas, session_contexts, seqs, prev_hashes, hashes)
      WITH ORDINALITY AS e(event_id, time, type, username, ip, session_id, data, ctx, seq, prev_hash, hash, n)
  ), stored AS (
    INSERT INTO securitylog (event_id, time, type, username, ip, session_id, data, session_context)
    SELECT e.event_id, e.time, e.type, e.username, e.ip, e.session_id, e.data, e.ctx FROM e ORDER BY e.n
    ON CONFLICT (event_id, time) DO NOTHING
    RETURNING event_id, time
  )
  INSERT INTO securitylog_chain (chain_id, seq, event_id, time, type, prev_hash, hash, duplicate)
  SELECT chain, e.seq, e.event_id, e.time, e.type, e.prev_hash, e.hash,
         NOT EXISTS (SELECT 1 FROM stored s WHERE s.event_id = e.event_id AND s.time = e.time)
  FROM e;
  IF checkpoint_seq IS NOT NULL THEN
    INSERT INTO securitylog_checkpoint (chain_id, seq, hash, time, key_id, signature, final)
    VALUES (chain, checkpoint_seq, checkpoint_hash, checkpoint_time, checkpoint_key, checkpoint_signature, checkpoint_final);
  END IF;
END
$$;

-- The session ledger: one row per authenticated session, so that a timeout is noticed whatever the
-- session store and however many app instances share it (stores delete expired sessions silently).
-- authtrail inserts a row at login, and its sweep claims due rows (FOR UPDATE SKIP LOCKED, with a lease
-- so that a killed instance's claims return), asks the session store whether the session still exists,
-- and reports SESSIONTIMEOUT only for those that do not. Rows are not written per request: a due row
-- whose session is still alive takes the store's new expiry instead. A logout leaves its row as a
-- marker for ten minutes, so that a request under way on another instance cannot add it back.
CREATE TABLE IF NOT EXISTS securitylog_session (
  session_id          text PRIMARY KEY,            -- as in the audit table (a keyed hash by default)
  sealed_id           text NOT NULL,               -- the store's id, AES-GCM sealed with the app's session key
  username            text NOT NULL DEFAULT '',
  user_id             text NOT NULL DEFAULT '',
  profile             text NOT NULL DEFAULT '{}',  -- JSON of the <sessioncontext> profile fields
  ip                  text NOT NULL DEFAULT '',
  user_agent          text NOT NULL DEFAULT '',
  login_time          timestamptz NOT NULL,
  expires_at          timestamptz NOT NULL,        -- idle expiry as last known
  absolute_expires_at timestamptz,                 -- login_time + the absolute lifetime, when configured
  due_at              timestamptz NOT NULL,        -- the earlier of the two: what the sweep looks at
  ended               text,                        -- 'timeout', 'absolute' or 'lost@<when, base 36>' once confirmed, until the event is spooled;
                                                   -- 'removed' for a session that ended otherwise (claimed_until 'infinity', due_at when it is deleted)
  claimed_by          text,
  claimed_until       timestamptz
);
CREATE INDEX IF NOT EXISTS securitylog_session_due_idx ON securitylog_session (due_at);

-- Brute-force detection (security.logging.bruteforce.*): failed logins per username or address, in
-- buckets, shared by every app instance logging here; and the lockouts they lead to. Keys are "u:" or
-- "i:" and a SHA-256 of the username or address, never the name. Working state, not evidence: the
-- LOCKOUT events are in the audit table.
CREATE TABLE IF NOT EXISTS securitylog_attempt (
  attempt_key text NOT NULL,
  bucket      timestamptz NOT NULL,
  count       integer NOT NULL,
  PRIMARY KEY (attempt_key, bucket)
);
CREATE TABLE IF NOT EXISTS securitylog_block (
  attempt_key text PRIMARY KEY,           -- one row per key: replaced only once expired, so one instance creates each lockout
  since       timestamptz NOT NULL,
  until       timestamptz NOT NULL,
  attempts    integer NOT NULL
);
CREATE INDEX IF NOT EXISTS securitylog_block_since_idx ON securitylog_block (since);

-- Roles: authtrail_writer (what app instances connect as, through a LOGIN role granted it) may call the
-- procedures and insert, never UPDATE or DELETE audit rows (the session ledger is working state, not evidence); authtrail_reader (admins, the CLI) may read.
DO $$
BEGIN
  CREATE ROLE authtrail_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; -- exists already (or created concurrently)
END
$$;
DO $$
BEGIN
  CREATE ROLE authtrail_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
DO $$
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO authtrail_writer, authtrail_reader', current_schema());
END
$$;
REVOKE ALL ON securitylog FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE securitylogging(xml, xml, varchar), securitylogging_batch(xml[], xml[], varchar[], uuid[], timestamptz[], text[], text[], text[]), securitylog_add_partitions(int) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE securitylogging(xml, xml, varchar), securitylogging_batch(xml[], xml[], varchar[], uuid[], timestamptz[], text[], text[], text[]), securitylog_add_partitions(int) TO authtrail_writer;
-- Chain links and checkpoints are written only through securitylogging_chained (SECURITY DEFINER).
REVOKE EXECUTE ON PROCEDURE securitylogging_chained(xml[], xml[], varchar[], uuid[], timestamptz[], text[], text[], text[], uuid, bigint[], text[], text[], bigint, text, timestamptz, text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE securitylogging_chained(xml[], xml[], varchar[], uuid[], timestamptz[], text[], text[], text[], uuid, bigint[], text[], text[], bigint, text, timestamptz, text, text, boolean) TO authtrail_writer;
REVOKE ALL ON securitylog_chain, securitylog_checkpoint FROM PUBLIC;
GRANT SELECT ON securitylog_chain, securitylog_checkpoint TO authtrail_reader;
GRANT INSERT ON securitylog TO authtrail_writer;
GRANT SELECT ON securitylog TO authtrail_reader;
REVOKE ALL ON securitylog_session FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON securitylog_session TO authtrail_writer;
GRANT SELECT ON securitylog_session TO authtrail_reader;
REVOKE ALL ON securitylog_attempt, securitylog_block FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON securitylog_attempt, securitylog_block TO authtrail_writer;
GRANT SELECT ON securitylog_attempt, securitylog_block TO authtrail_reader;

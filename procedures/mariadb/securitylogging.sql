-- authtrail: audit table and logging procedures for MariaDB 10.6+ (JSON_TABLE).
--
-- Deploy into the database the app connects to, or into a database named like the schema of
-- security.logging.proc (dbo for dbo.securitylogging):
--   mariadb -e 'CREATE DATABASE IF NOT EXISTS dbo' && mariadb dbo < procedures/mariadb/securitylogging.sql
-- Re-running the file is safe.
--
-- MariaDB has no xml type: documents are stored as text, and the procedure refuses one that is not
-- well-formed XML with the expected root. Times are UTC. Differences from Showcase as for PostgreSQL:
-- type is VARCHAR(32) (SESSIONTIMEOUT does not fit NVARCHAR(10)), a repeated event id is ignored, time is
-- when the event happened, and the writer role may call the procedures and insert, never UPDATE or DELETE.

CREATE TABLE IF NOT EXISTS securitylog (
  id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id        CHAR(36) CHARACTER SET ascii NULL,
  time            DATETIME(3) NOT NULL,
  type            VARCHAR(32) NOT NULL,
  username        VARCHAR(1024) NOT NULL DEFAULT '',
  ip              VARCHAR(1024) NOT NULL DEFAULT '',
  session_id      VARCHAR(128) NOT NULL DEFAULT '',
  data            MEDIUMTEXT NOT NULL,
  session_context MEDIUMTEXT NOT NULL,
  UNIQUE KEY securitylog_event_id (event_id),
  KEY securitylog_time (time, id),
  KEY securitylog_user (username(191), time),
  KEY securitylog_type (type, time),
  KEY securitylog_ip (ip(64), time)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- The session ledger (see procedures/securitylogging.sql): one row per authenticated session, claimed by
-- one app instance at a time when due, so that N instances report each timeout once.
CREATE TABLE IF NOT EXISTS securitylog_session (
  session_id          VARCHAR(128) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  sealed_id           VARCHAR(1024) CHARACTER SET ascii NOT NULL,
  username            VARCHAR(1024) NOT NULL DEFAULT '',
  user_id             VARCHAR(1024) NOT NULL DEFAULT '',
  profile             TEXT NOT NULL,
  ip                  VARCHAR(1024) NOT NULL DEFAULT '',
  user_agent          TEXT NOT NULL,
  login_time          DATETIME(3) NOT NULL,
  expires_at          DATETIME(3) NOT NULL,
  absolute_expires_at DATETIME(3) NULL,
  due_at              DATETIME(3) NOT NULL,
  ended               VARCHAR(16) NULL,                -- as in procedures/securitylogging.sql, 'removed' marking a recent logout
  claimed_by          VARCHAR(128) NULL,
  claimed_until       DATETIME(3) NULL,
  KEY securitylog_session_due (due_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- Brute-force detection (see procedures/securitylogging.sql): failed logins per hashed username or
-- address in buckets, and the lockouts they lead to, shared by every app instance.
CREATE TABLE IF NOT EXISTS securitylog_attempt (
  attempt_key VARCHAR(64) CHARACTER SET ascii NOT NULL,
  bucket      DATETIME(3) NOT NULL,
  count       INT NOT NULL,
  PRIMARY KEY (attempt_key, bucket)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS securitylog_block (
  attempt_key VARCHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  since       DATETIME(3) NOT NULL,
  until       DATETIME(3) NOT NULL,
  attempts    INT NOT NULL,
  KEY securitylog_block_since (since)
) ENGINE = InnoDB;

DELIMITER //

-- ExtractValue() returns text still entity-escaped ("a &amp; b"); these are the references authtrail's
-- XML contains.
CREATE OR REPLACE FUNCTION securitylog_xml_text(t LONGTEXT) RETURNS LONGTEXT DETERMINISTIC
RETURN REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(REPLACE(t, '&lt;', '<'), '&gt;', '>'), '&quot;', '"'), '&apos;', ''''), '&#13;', '\r'), '&amp;', '&')//

-- Stores many events in one statement, in array order: events is a JSON array of
-- {"session_context": "...", "data": "...", "type": "..."}. authtrail calls <procedure>_batch when it
-- exists and the procedure itself once per event otherwise; if you change the body of securitylogging,
-- change or drop this one too.
CREATE OR REPLACE PROCEDURE securitylogging_batch(IN events LONGTEXT)
SQL SECURITY DEFINER
BEGIN
  DECLARE malformed INT;
  -- ExtractValue gives NULL for a document it cannot parse.
  SELECT COUNT(*) INTO malformed
    FROM JSON_TABLE(events, '$[*]' COLUMNS (ctx LONGTEXT PATH '$.session_context', doc LONGTEXT PATH '$.data')) AS j
   WHERE NOT (ExtractValue(j.ctx, 'count(/sessioncontext)') <=> '1') OR NOT (ExtractValue(j.doc, 'count(/data)') <=> '1');
  IF malformed > 0 THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'securitylogging: session_context and data must be well-formed XML with roots <sessioncontext> and <data>';
  END IF;
  INSERT INTO securitylog (event_id, time, type, username, ip, session_id, data, session_context)
  SELECT
    NULLIF(ExtractValue(j.ctx, '/sessioncontext/eventid'), ''),
    COALESCE(STR_TO_DATE(NULLIF(ExtractValue(j.ctx, '/sessioncontext/eventtime'), ''), '%Y-%m-%dT%H:%i:%s.%fZ'), UTC_TIMESTAMP(3)),
    j.type,
    -- After a LOGINERROR nobody is signed in: the name that was tried is in errorData/username.
    securitylog_xml_text(COALESCE(NULLIF(ExtractValue(j.ctx, '/sessioncontext/username'), ''), NULLIF(ExtractValue(j.doc, '/data/UserName'), ''), ExtractValue(j.doc, '/data/errorData/username'))),
    securitylog_xml_text(COALESCE(NULLIF(ExtractValue(j.ctx, '/sessioncontext/ip'), ''), ExtractValue(j.doc, '/data/IP'))),
    securitylog_xml_text(COALESCE(NULLIF(ExtractValue(j.doc, '/data/HttpSessionId'), ''), ExtractValue(j.ctx, '/sessioncontext/sessionid'))),
    j.doc,
    j.ctx
  FROM JSON_TABLE(events, '$[*]' COLUMNS (
      n    FOR ORDINALITY,
      ctx  LONGTEXT PATH '$.session_context',
      doc  LONGTEXT PATH '$.data',
      type VARCHAR(32) PATH '$.type')) AS j
  ORDER BY j.n
  ON DUPLICATE KEY UPDATE id = id;
END//

-- Called as CALL securitylogging(session_context, data, type), positionally, as Showcase did. Any
-- procedure with this signature can replace it; authtrail never writes the table itself.
CREATE OR REPLACE PROCEDURE securitylogging(IN session_context LONGTEXT, IN data LONGTEXT, IN type VARCHAR(32))
SQL SECURITY DEFINER
BEGIN
  CALL securitylogging_batch(JSON_ARRAY(JSON_OBJECT('session_context', session_context, 'data', data, 'type', type)));
END//

DELIMITER ;

-- Roles: authtrail_writer (granted to the account app instances use) may call the procedures and
-- insert, never UPDATE or DELETE; authtrail_reader (admins, the CLI) may read.
CREATE ROLE IF NOT EXISTS authtrail_writer;
CREATE ROLE IF NOT EXISTS authtrail_reader;
SET @authtrail_grant = CONCAT('GRANT EXECUTE ON PROCEDURE `', DATABASE(), '`.`securitylogging` TO authtrail_writer');
PREPARE authtrail_statement FROM @authtrail_grant; EXECUTE authtrail_statement; DEALLOCATE PREPARE authtrail_statement;
SET @authtrail_grant = CONCAT('GRANT EXECUTE ON PROCEDURE `', DATABASE(), '`.`securitylogging_batch` TO authtrail_writer');
PREPARE authtrail_statement FROM @authtrail_grant; EXECUTE authtrail_statement; DEALLOCATE PREPARE authtrail_statement;
SET @authtrail_grant = CONCAT('GRANT INSERT ON `', DATABASE(), '`.`securitylog` TO authtrail_writer');
PREPARE authtrail_statement FROM @authtrail_grant; EXECUTE authtrail_statement; DEALLOCATE PREPARE authtrail_statement;
SET @authtrail_grant = CONCAT('GRANT SELECT ON `', DATABASE(), '`.`securitylog` TO authtrail_reader');
PREPARE authtrail_statement FROM @authtrail_grant; EXECUTE authtrail_statement; DEALLOCATE PREPARE authtrail_statement;
SET @authtrail_grant = CONCAT('GRANT SELECT, INSERT, UPDATE, DELETE ON `', DATABASE(), '`.`securitylog_session` TO authtrail_writer');
PREPARE authtrail_statement FROM @authtrail_grant; EXECUTE authtrail_statement; DEALLOCATE PREPARE authtrail_statement;
SET @authtrail_grant = CONCAT('GRANT SELECT, INSERT, UPDATE, DELETE ON `', DATABASE(), '`.`securitylog_attempt` TO authtrail_writer');
PREPARE authtrail_statement FROM @authtrail_grant; EXECUTE authtrail_statement; DEALLOCATE PREPARE authtrail_statement;
SET @authtrail_grant = CONCAT('GRANT SELECT, INSERT, UPDATE, DELETE ON `', DATABASE(), '`.`securitylog_block` TO authtrail_writer');
PREPARE authtrail_statement FROM @authtrail_grant; EXECUTE authtrail_statement; DEALLOCATE PREPARE authtrail_statement;

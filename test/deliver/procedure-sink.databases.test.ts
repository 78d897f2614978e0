import { describe, expect, it } from 'vitest'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { captureEvent } from '../../src/capture/request-facts.js'
import { createPostgresProcedureSink } from '../../src/deliver/postgres/postgres-procedure.js'
import { createPostgresClient } from '../../src/deliver/postgres/postgres-client.js'
import { createProcedureSink } from '../../src/deliver/procedure-sink.js'
import { openProcedureSink } from '../../src/deliver/open-procedure-sink.js'
import { isUnavailable } from '../../src/deliver/sql-client.js'
import { createDescriber } from '../../src/describe/event-xml.js'
import { queryAudit } from '../../src/review/audit-query.js'
import { DeliveryError } from '../../src/types.js'
import type { AuditEventType, Sink } from '../../src/types.js'
import { auditEvent } from '../helpers/audit-event.js'
import { DATABASES, MARIADB_URL, POSTGRES_URL, namespacePerTest } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'

const describeEvent = createDescriber()
const TYPES: readonly AuditEventType[] = ['LOGIN', 'LOGINERROR', 'LOGOUT', 'SESSIONTIMEOUT', 'LOGOUTERROR']

async function sinkFor(ns: TestNamespace, proc = ns.proc): Promise<Sink> {
  const sink = await openProcedureSink(ns.client, proc, async () => {})
  if (!sink) throw new Error(`no procedure ${proc}`)
  return sink
}

/** A user's own procedure with the shipped signature: writes elsewhere, refuses the user "poison". */
const USER_PROCEDURE = {
  postgres: `CREATE TABLE my_log (n serial PRIMARY KEY, kind text, who text);
CREATE PROCEDURE my_logging(session_context xml, data xml, type varchar) LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF (xpath('/data/UserName/text()', data))[1]::text = 'poison' THEN RAISE EXCEPTION 'refusing %', type; END IF;
  INSERT INTO my_log (kind, who) VALUES (type, (xpath('/sessioncontext/username/text()', session_context))[1]::text);
END $$`,
  mariadb: `CREATE TABLE my_log (n INT AUTO_INCREMENT PRIMARY KEY, kind VARCHAR(32), who VARCHAR(255));
DELIMITER //
CREATE PROCEDURE my_logging(IN session_context LONGTEXT, IN data LONGTEXT, IN type VARCHAR(32))
BEGIN
  IF ExtractValue(data, '/data/UserName') = 'poison' THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refusing'; END IF;
  INSERT INTO my_log (kind, who) VALUES (type, ExtractValue(session_context, '/sessioncontext/username'));
END//
DELIMITER ;`,
}

for (const db of DATABASES) {
  describe.skipIf(db.unavailable !== undefined)(`the logging procedure on ${db.name}`, () => {
    const ns = namespacePerTest(db)

    it('stores every event type through the shipped procedure with the columns the XML implies', async () => {
      const events = TYPES.map((type, i) =>
        auditEvent(type, { username: type === 'LOGINERROR' ? 'o\'brien & <co>' : 'alice', time: Date.UTC(2026, 10, 23, 10, 0, i, 123), sessionId: `SID${i}`, ip: '192.0.2.7' }),
      )
      const described = events.map(describeEvent)
      await (await sinkFor(ns)).deliver(events)
      const rows = (await queryAudit(ns.client, ns.table, { limit: 10 })).reverse()
      expect(rows.map((r) => r.type)).toEqual(TYPES)
      expect(rows.map((r) => r.username)).toEqual(['alice', 'o\'brien & <co>', 'alice', 'alice', 'alice'])
      expect(rows.map((r) => r.session_id)).toEqual(['SID0', 'SID1', 'SID2', 'SID3', 'SID4'])
      expect(rows.map((r) => r.time)).toEqual(events.map((e) => new Date(e.time).toISOString()))
      expect(rows.every((r) => r.ip === '192.0.2.7')).toBe(true)
      expect(rows.map((r) => r.data)).toEqual(described.map((d) => d.data))
      expect(rows.map((r) => r.session_context)).toEqual(described.map((d) => d.sessionContext))
    })

    it('stores a LOGOUTERROR called positionally, as Showcase called its procedure, with the columns its XML names', async () => {
      const event = auditEvent('LOGOUTERROR', { username: 'alice', sessionId: 'SID-OUT', ip: '192.0.2.8', time: Date.UTC(2026, 10, 23, 10, 1, 0, 5) })
      const { sessionContext, data } = describeEvent(event)
      const call = ns.client.dialect === 'postgres' ? `CALL ${ns.proc}($1::xml, $2::xml, $3)` : `CALL ${ns.proc}(?, ?, ?)`
      await ns.client.query(call, [sessionContext, data, 'LOGOUTERROR'])
      const rows = await queryAudit(ns.client, ns.table, { types: ['LOGOUTERROR'] })
      expect(rows.map((r) => [r.type, r.username, r.session_id, r.ip, r.time])).toEqual([['LOGOUTERROR', 'alice', 'SID-OUT', '192.0.2.8', '2026-11-23T10:01:00.005Z']])
      expect(rows[0]!.data).toBe(data)
    })

    it('stores a failed login whatever the name typed: 1,024 wide characters, or one the redaction lengthens', async () => {
      const limits = { userAgentMaxLength: 512, fieldMaxLength: 1024 }
      const typed = (username: string, password: string, ip = '192.0.2.9') =>
        captureEvent('LOGINERROR', { ip, headers: { 'user-agent': 'curl/8' }, query: {} }, 'SID', { username, userId: '', profile: {} }, limits, { method: 'FORM', message: 'Bad credentials', password })
      // Distinct characters: a repeated one would be compressed into the index's limit.
      const wide = Array.from({ length: 1024 }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20000))).join('')
      const events = [typed(wide, 'pw-1'), typed('abcd'.repeat(256), 'abcd'), typed('alice', 'pw-2', 'ÿ'.repeat(1024))]
      await (await sinkFor(ns)).deliver(events)
      const rows = (await queryAudit(ns.client, ns.table, { limit: 10 })).reverse()
      expect(rows.map((r) => r.username)).toEqual(events.map((e) => e.username))
      expect(rows.map((r) => r.ip)).toEqual(events.map((e) => e.ip))
    })

    it('stores a batch of 300 in order in one call, and a replay of it stores nothing twice', async () => {
      const events = Array.from({ length: 300 }, (_, i) => auditEvent('LOGIN', { username: `user${i}`, time: Date.UTC(2026, 10, 1, 0, 0, 0, i) }))
      const sink = await sinkFor(ns)
      await sink.deliver(events)
      await sink.deliver(events)
      const rows = await queryAudit(ns.client, ns.table, { limit: 1000 })
      expect(rows).toHaveLength(300)
      expect(rows.map((r) => r.username)).toEqual(events.map((e) => e.username).reverse())
      const ids = rows.map((r) => r.id).reverse()
      expect([...ids].sort((a, b) => a - b)).toEqual(ids)
    })

    it('calls a user procedure with the same signature instead of writing the table, and reports only the event it refuses', async () => {
      if (db.name === 'pglite') await ns.admin(USER_PROCEDURE.postgres)
      else await ns.admin(USER_PROCEDURE[ns.client.dialect])
      const userProc = ns.proc.replace(/securitylogging$/, 'my_logging')
      const sink = await sinkFor(ns, userProc)
      const poison = auditEvent('LOGIN', { username: 'poison' })
      const error = await sink.deliver([auditEvent('LOGIN', { username: 'ann' }), poison, auditEvent('LOGOUT', { username: 'ann' })]).catch((err: unknown) => err)
      expect(error).toBeInstanceOf(DeliveryError)
      expect([...(error as DeliveryError).failed.keys()]).toEqual([poison.id])
      expect(await queryAudit(ns.client, ns.table, {})).toEqual([])
      const table = ns.client.dialect === 'postgres' ? `${ns.proc.split('.')[0]}.my_log` : 'my_log'
      const logged = await ns.client.query<{ kind: string; who: string }>(`SELECT kind, who FROM ${table} ORDER BY n`)
      expect(logged.map((r) => `${r.kind} ${r.who}`)).toEqual(['LOGIN ann', 'LOGOUT ann'])
    })
  })
}

describe.skipIf(DATABASES[1]!.unavailable !== undefined)('the PostgreSQL writer role', () => {
  const ns = namespacePerTest(DATABASES[1]!)

  it('may call the procedures and insert, but never UPDATE or DELETE audit rows; the reader may read', async () => {
    const login = ns.id
    await ns.admin(`DROP ROLE IF EXISTS ${login}; CREATE ROLE ${login} LOGIN IN ROLE authtrail_writer`)
    await ns.admin(`DROP ROLE IF EXISTS ${login}_r; CREATE ROLE ${login}_r LOGIN IN ROLE authtrail_reader`)
    try {
      const writer = createPostgresClient({ url: POSTGRES_URL.replace('//postgres@', `//${login}@`), poolSize: 1 })
      try {
        await (await createPostgresProcedureSink(writer, ns.proc, async () => {})).deliver([auditEvent('LOGIN', { username: 'w' })])
        await expect(writer.query(`UPDATE ${ns.table} SET username = 'forged'`)).rejects.toThrow(/permission denied/)
        await expect(writer.query(`DELETE FROM ${ns.table}`)).rejects.toThrow(/permission denied/)
        await expect(writer.query(`TRUNCATE ${ns.table}`)).rejects.toThrow(/permission denied/)
        await expect(writer.query(`SELECT * FROM ${ns.table}`)).rejects.toThrow(/permission denied/)
      } finally {
        await writer.close()
      }
      const reader = createPostgresClient({ url: POSTGRES_URL.replace('//postgres@', `//${login}_r@`), poolSize: 1 })
      try {
        expect((await queryAudit(reader, ns.table, {})).map((r) => r.username)).toEqual(['w'])
        await expect(reader.query(`DELETE FROM ${ns.table}`)).rejects.toThrow(/permission denied/)
      } finally {
        await reader.close()
      }
    } finally {
      await ns.admin(`DROP OWNED BY ${login}; DROP ROLE ${login}; DROP OWNED BY ${login}_r; DROP ROLE ${login}_r`)
    }
  })
})

describe.skipIf(DATABASES[2]!.unavailable !== undefined)('the MariaDB writer role', () => {
  const ns = namespacePerTest(DATABASES[2]!)

  it('may call the procedures and insert, but never UPDATE or DELETE audit rows', async () => {
    const user = ns.id
    await ns.admin(`CREATE USER '${user}'@'%'; GRANT authtrail_writer TO '${user}'@'%'; SET DEFAULT ROLE authtrail_writer FOR '${user}'@'%'`)
    try {
      const url = new URL(MARIADB_URL.replace(/^mariadb:/, 'mysql:'))
      const writer = await mysql.createConnection({ host: url.hostname, port: Number(url.port || 3306), user, database: ns.id })
      try {
        const event = describeEvent(auditEvent('LOGIN', { username: 'w' }))
        await writer.query('CALL securitylogging(?, ?, ?)', [event.sessionContext, event.data, 'LOGIN'])
        await expect(writer.query('UPDATE securitylog SET username = ?', ['forged'])).rejects.toThrow(/denied/)
        await expect(writer.query('DELETE FROM securitylog')).rejects.toThrow(/denied/)
      } finally {
        await writer.end()
      }
      expect((await queryAudit(ns.client, ns.table, {})).map((r) => r.username)).toEqual(['w'])
    } finally {
      await ns.admin(`DROP USER '${user}'@'%'`)
    }
  })

  it('refuses XML that is not well-formed, as an error of that event', async () => {
    const error = await ns.client.query('CALL securitylogging(?, ?, ?)', ['<sessioncontext><open>', '<data/>', 'LOGIN']).catch((err: unknown) => err)
    expect((error as { sqlState?: string }).sqlState).toBe('45000')
    expect(isUnavailable(error)).toBe(false)
  })
})

describe('an unreachable database', () => {
  it('is reported as unavailable, so the outbox waits instead of parking the events', async () => {
    const client = createPostgresClient({ url: 'postgres://postgres@127.0.0.1:1/test', poolSize: 1 })
    const sink = createProcedureSink(client, 'dbo.securitylogging', { one: (c, e) => c.query('CALL dbo.securitylogging($1::xml, $2::xml, $3)', [e.sessionContext, e.data, e.event.type]), many: undefined }, () => client.close())
    const error = await sink.deliver([auditEvent('LOGIN')]).catch((err: unknown) => err)
    expect(error).not.toBeInstanceOf(DeliveryError)
    expect(isUnavailable(error)).toBe(true)
    await sink.close()
  })

  it('classifies database errors: outages and configuration are unavailable, a refused event is not', () => {
    expect(isUnavailable(Object.assign(new Error('refused'), { code: 'ECONNREFUSED', errno: -111 }))).toBe(true)
    expect(isUnavailable(Object.assign(new Error('pipe'), { code: 'EPIPE' }))).toBe(true)
    expect(isUnavailable(Object.assign(new Error('shutdown'), { code: '57P01' }))).toBe(true)
    expect(isUnavailable(Object.assign(new Error('no proc'), { code: '42883' }))).toBe(true)
    expect(isUnavailable(Object.assign(new Error('raise'), { code: 'P0001' }))).toBe(false)
    expect(isUnavailable(Object.assign(new Error('bad xml'), { code: '2200N' }))).toBe(false)
    expect(isUnavailable(Object.assign(new Error('signal'), { code: 'ER_SIGNAL_EXCEPTION', errno: 1644, sqlState: '45000' }))).toBe(false)
    expect(isUnavailable(Object.assign(new Error('gone'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true }))).toBe(true)
    expect(pg).toBeDefined()
  })
})

describe.skipIf(DATABASES[2]!.unavailable !== undefined)('MariaDB names as Showcase users write them', () => {
  const ns = namespacePerTest(DATABASES[2]!)

  it('calls <database>.securitylogging when that database has it, and the connection database\'s otherwise', async () => {
    // The namespace is its own database: "<id>.securitylogging" names it explicitly.
    const explicit = await openProcedureSink(ns.client, `${ns.id}.securitylogging`, async () => {})
    await explicit!.deliver([auditEvent('LOGIN', { username: 'explicit' })])
    // No database "showcase_<id>" exists: the name falls back to the connection's database.
    const fallback = await openProcedureSink(ns.client, `showcase_${ns.id}.securitylogging`, async () => {})
    await fallback!.deliver([auditEvent('LOGIN', { username: 'fallback' })])
    expect((await queryAudit(ns.client, ns.table, {})).map((r) => r.username).sort()).toEqual(['explicit', 'fallback'])
    expect(await openProcedureSink(ns.client, `${ns.id}.no_such_procedure`, async () => {})).toBeUndefined()
  })
})

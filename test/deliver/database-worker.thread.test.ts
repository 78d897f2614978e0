import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createDatabaseLedger, sessionLedgerTable } from '../../src/capture/session-ledger-database.js'
import { createSessionSeal } from '../../src/capture/session-seal.js'
import { parseConfig } from '../../src/config/load-config.js'
import { openDatabaseWorker } from '../../src/deliver/open-database.js'
import type { DatabaseWorker } from '../../src/deliver/database-worker.js'
import { isUnavailable } from '../../src/deliver/sql-client.js'
import { fromWireError, toWireError } from '../../src/deliver/worker-thread.js'
import { createDescriber } from '../../src/describe/event-xml.js'
import { queryAudit } from '../../src/review/audit-query.js'
import { DeliveryError } from '../../src/types.js'
import { auditEvent } from '../helpers/audit-event.js'
import { DATABASES, POSTGRES_URL } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { eventually } from '../helpers/eventually.js'
import { tcpProxy } from '../helpers/tcp-proxy.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'

const postgres = DATABASES.find((d) => d.name === 'postgres')!

describe('errors crossing the thread boundary', () => {
  it('keep what tells an outage from a refusal, and a DeliveryError keeps the events it names', () => {
    const outage = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', errno: -111 })
    const refused = Object.assign(new Error('value too long'), { code: '22001' })
    const mysqlFatal = Object.assign(new Error('Connection lost'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true })
    for (const err of [outage, refused, mysqlFatal]) {
      const back = fromWireError(structuredClone(toWireError(err)))
      expect(back.message).toBe(err.message)
      expect(isUnavailable(back)).toBe(isUnavailable(err))
    }
    expect(isUnavailable(fromWireError(structuredClone(toWireError(refused))))).toBe(false)

    const failed = new Map([['e2', Object.assign(new Error('could not describe the event: bad'), { permanent: true })]])
    const back = fromWireError(structuredClone(toWireError(new DeliveryError('1 of 3 events refused', failed))))
    expect(back).toBeInstanceOf(DeliveryError)
    expect([...(back as DeliveryError).failed.keys()]).toEqual(['e2'])
    expect((back as DeliveryError).failed.get('e2')).toMatchObject({ message: 'could not describe the event: bad', permanent: true })
  })
})

for (const db of DATABASES) {
  describe.skipIf(db.unavailable !== undefined)(`the database thread on ${db.name}`, () => {
    let ns: TestNamespace | undefined
    let database: DatabaseWorker | undefined
    let project: ReturnType<typeof tempProject> | undefined
    afterEach(async () => {
      await database?.close()
      await ns?.teardown()
      project?.remove()
      database = ns = project = undefined
    })

    /** The app's way in: the thread opened from a properties file, with the procedure's sink. */
    const open = async (sessionKey?: Buffer): Promise<DatabaseWorker> => {
      // The embedded store allows one holder, so it gets a directory of its own rather than the namespace's.
      let properties: Record<string, string> = { 'security.logging.embedded.dir': 'data' }
      if (db.name !== 'pglite') {
        ns = await db.create()
        properties = ns.properties
      }
      project = tempProject(properties)
      const config = parseConfig({ 'security.logging.proc': 'dbo.securitylogging', ...properties }, project.config, project.dir)
      database = await openDatabaseWorker(config, { env: {}, asApp: true, logger: memoryLogger(), ...(sessionKey ? { sessionKey } : {}) })
      return database
    }

    it('stores events handed over as captured, described in the thread exactly as the describer does', async () => {
      const { sink, client, table } = await open()
      const events = [auditEvent('LOGIN', { username: 'ann <&>' }), auditEvent('LOGINERROR', { username: 'bob', userAgent: 'curl/8.5.0' }), auditEvent('LOGOUT')]
      await sink!.deliver(events)
      const rows = await queryAudit(client, table, {})
      const describe = createDescriber()
      expect(rows.map((r) => r.data).reverse()).toEqual(events.map((e) => describe(e).data))
      expect(rows.map((r) => r.session_context).reverse()).toEqual(events.map((e) => describe(e).sessionContext))
    })

    it('seals and writes session ledger rows in the thread, and the app\'s ledger claims them with the same key', async () => {
      const key = Buffer.from('ledger-key-0123456789abcdef0123456789')
      const { client, table, insertLedgerRows } = await open(key)
      const entry = { user: { username: 'ann', userId: '7', profile: { email: 'ann@example.org' } }, auditSessionId: 'HASHED-SID', ip: '203.0.113.9', userAgent: 'curl/8.5.0', loginTime: 1_000, expiresAt: 2_000, absoluteExpiresAt: undefined }
      await insertLedgerRows!([{ sessionId: 'store-sid-in-clear', entry }], true)
      const raw = await client.query<Record<string, unknown>>(`SELECT * FROM ${sessionLedgerTable(client.dialect, table)}`)
      expect(raw).toHaveLength(1)
      expect(JSON.stringify(raw)).not.toContain('store-sid-in-clear')
      const ledger = createDatabaseLedger({ client, auditTable: table, hashSessionId: () => 'HASHED-SID', seal: createSessionSeal(key) })
      const [claim] = await ledger.claimDue(3_000, 10, 60_000)
      expect(claim).toMatchObject({ sessionId: 'store-sid-in-clear', entry: { ...entry, absoluteExpiresAt: undefined } })
    })

    it('is started again after its thread dies, and the next calls succeed', async () => {
      const database = await open()
      const dead = database.thread
      await dead.terminate()
      // The call that finds the thread gone fails as an outage, which the outbox retries.
      const failure = await database.sink!.deliver([auditEvent('LOGIN', { username: 'first' })]).catch((err: unknown) => err)
      expect(isUnavailable(failure)).toBe(true)
      await eventually(async () => {
        await database.sink!.deliver([auditEvent('LOGIN', { username: 'after the restart' })])
      }, 30_000, 200)
      expect(database.thread).not.toBe(dead)
      const rows = await queryAudit(database.client, database.table, {})
      expect(rows.map((r) => r.username)).toContain('after the restart')
    })
  })
}

describe.skipIf(postgres.unavailable !== undefined)('the database thread when PostgreSQL is unreachable', () => {
  it('fails a delivery as an outage, not as a refusal of the events, through a thread restart, until the database is back', async () => {
    const ns = await postgres.create()
    const proxy = await tcpProxy(Number(new URL(POSTGRES_URL).port || 5432))
    const project = tempProject()
    let database: DatabaseWorker | undefined
    try {
      const url = POSTGRES_URL.replace(/:\d+\//, `:${proxy.port}/`)
      const config = parseConfig({ 'security.logging.proc': ns.proc, 'security.logging.db': url }, path.join(project.dir, 'x.properties'), project.dir)
      database = await openDatabaseWorker(config, { env: {}, asApp: true })
      await proxy.down()
      const failure = await database.sink!.deliver([auditEvent('LOGIN')]).catch((err: unknown) => err)
      expect(failure).toBeInstanceOf(Error)
      expect(failure).not.toBeInstanceOf(DeliveryError)
      expect(isUnavailable(failure)).toBe(true)
      // The thread dies during the outage: the one started in its place waits for the database too.
      await database.thread.terminate()
      await expect(database.sink!.deliver([auditEvent('LOGIN')])).rejects.toSatisfy(isUnavailable)
      await eventually(async () => expect(await database!.sink!.deliver([auditEvent('LOGIN')]).catch((err: Error) => err.message)).toMatch(/not reachable yet/), 20_000, 200)
      await proxy.up()
      await eventually(() => database!.sink!.deliver([auditEvent('LOGIN', { username: 'back' })]), 20_000, 200)
      expect((await queryAudit(ns.client, ns.table, {})).map((r) => r.username)).toEqual(['back'])
    } finally {
      await database?.close()
      await proxy.close()
      await ns.teardown()
      project.remove()
    }
  })
})

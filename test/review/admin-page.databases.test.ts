import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryAudit } from '../../src/review/audit-query.js'
import { client } from '../helpers/browser-like-client.js'
import { parseCsv } from '../helpers/csv.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { startRunningDemo } from '../helpers/running-demo.js'
import type { RunningDemo } from '../helpers/running-demo.js'

// The embedded store is the browser test's and the HTTP test's; here the demo logs to a server.
for (const db of DATABASES.filter((d) => d.name !== 'pglite')) {
  describe.skipIf(db.unavailable !== undefined)(`the audit page on ${db.name}`, () => {
    let ns: TestNamespace
    let running: RunningDemo
    let admin: ReturnType<typeof client>
    beforeAll(async () => {
      ns = await db.create()
      running = await startRunningDemo(ns.properties)
      await client(running.url).post('/login', { username: 'mallory', password: 'x' })
      await client(running.url).post('/login', { username: 'mallory', password: 'y' })
      await client(running.url, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0' }).post('/login', { username: 'alice', password: 'wonderland' })
      admin = client(running.url)
      await admin.post('/login', { username: 'admin', password: 'change-me' })
      await running.demo.audit.flush()
    })
    afterAll(async () => {
      await running?.close()
      await ns?.teardown()
    })

    it('filters by network and outcome on the server database', async () => {
      const page = await admin.get('/admin/audit?ip=127.0.0.0/8&outcome=failure')
      expect(page.status).toBe(200)
      expect([...page.text.matchAll(/<td class="type-([A-Z_]+)">/g)].map((m) => m[1])).toEqual(['LOGINERROR', 'LOGINERROR'])
    })

    it('shows the failure counts and the active sessions, without any session id', async () => {
      const failures = await admin.get('/admin/audit?view=failures&min=2')
      expect(failures.status).toBe(200)
      expect(failures.text).toMatch(/<table class="bursts">.*mallory/s)
      const sessions = await admin.get('/admin/audit?view=sessions')
      expect(sessions.status).toBe(200)
      expect(sessions.text).toContain('>alice</a>')
      expect(sessions.text).toContain('FIREFOX 121.0')
      const [ledger] = await ns.client.query<{ session_id: string; sealed_id: string }>(`SELECT session_id, sealed_id FROM ${ns.table.replace(/securitylog(`?)$/, 'securitylog_session$1')} WHERE username = 'alice'`)
      expect(sessions.text).not.toContain(ledger!.session_id)
      expect(sessions.text).not.toContain(ledger!.sealed_id)
    })

    it('exports CSV rows equal to the database rows', async () => {
      const csv = await admin.get('/admin/audit/export.csv?type=LOGIN&type=LOGINERROR')
      const [, ...records] = parseCsv(csv.text)
      const stored = await queryAudit(ns.client, ns.table, { types: ['LOGIN', 'LOGINERROR'], limit: 1000 })
      expect(records).toEqual(stored.map((row) => [row.id, row.time, row.type, row.username, row.ip, row.session_id, row.data, row.session_context].map(String)))
    })

    // Partitions are PostgreSQL's; MariaDB's table has none.
    if (db.name === 'postgres') it('counts the records of a dropped monthly partition in the purge page and its record', async () => {
      const month = new Date(Date.now() - 400 * 86_400_000)
      const from = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth(), 1))
      const to = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1))
      await ns.admin(`CREATE TABLE securitylog_old PARTITION OF securitylog FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}');
        INSERT INTO securitylog (event_id, time, type, username, data, session_context)
        SELECT gen_random_uuid(), '${from.toISOString()}'::timestamptz + n * interval '1 minute', 'LOGIN', 'old', '<data/>', '<sessioncontext/>' FROM generate_series(1, 3) n`)
      const token = /name="_csrf" value="([^"]+)"/.exec((await admin.get('/admin/audit')).text)![1]!
      const done = await admin.post('/admin/audit/purge', { 'older-than': '300d', _csrf: token })
      expect(done.status).toBe(200)
      expect(done.text).toContain('Removed 3 records older than')
      expect(done.text).toContain(': 3 in 1 dropped monthly partition and 0 deleted in batches.')
      await running.demo.audit.flush()
      const [access] = await queryAudit(ns.client, ns.table, { types: ['AUDIT_ACCESS'], limit: 1 })
      expect(access!.data).toContain('<Action>purge</Action>')
      expect(access!.data).toContain('<Rows>3</Rows>')
    })
  })
}

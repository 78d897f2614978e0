import os from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryAudit } from '../../src/review/audit-query.js'
import { auditEvent, deliverEvents } from '../helpers/audit-event.js'
import { DATABASES, POSTGRES_URL } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { runCli } from '../helpers/run-cli.js'
import { tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

const parseLines = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
const NOW = Date.now()

// The embedded store is covered by query.embedded.test.ts: a namespace holding it open answers no CLI.
for (const db of DATABASES.filter((d) => d.name !== 'pglite')) {
  describe.skipIf(db.unavailable !== undefined)(`authtrail query and stats on ${db.name}`, () => {
    let ns: TestNamespace
    let project: TempProject
    beforeAll(async () => {
      ns = await db.create()
      project = tempProject(ns.properties)
      await deliverEvents(ns, [
        auditEvent('LOGINERROR', { username: 'eve', ip: '2001:db8::7', time: NOW - 3000 }),
        auditEvent('LOGINERROR', { username: 'eve', ip: '::ffff:192.0.2.10', time: NOW - 2000 }),
        auditEvent('LOGIN', { username: 'alice', ip: '192.0.2.200', time: NOW - 1000 }),
      ])
    })
    afterAll(async () => {
      await ns?.teardown()
      project?.remove()
    })

    it('filters by network and outcome, and records the query by calling the procedure', async () => {
      const v4 = await runCli(['query', '--format', 'json', '--ip', '192.0.2.0/24'], project.dir)
      expect(v4.stderr).toBe('')
      expect(v4.code).toBe(0)
      expect(parseLines(v4.stdout).map((r) => r.username)).toEqual(['alice', 'eve'])
      const v6 = parseLines((await runCli(['query', '--format', 'json', '--ip', '2001:db8::/64', '--outcome', 'failure'], project.dir)).stdout)
      expect(v6.map((r) => r.ip)).toEqual(['2001:db8::7'])
      const [access] = await queryAudit(ns.client, ns.table, { types: ['AUDIT_ACCESS'], limit: 1 })
      expect(access!.username).toBe(os.userInfo().username)
      expect(access!.data).toContain('<Action>query</Action>')
    })

    it('prints stats over the window', async () => {
      const result = await runCli(['stats', '--format', 'json', '--since', '1h', '--type', 'LOGIN,LOGINERROR'], project.dir)
      expect(result.code).toBe(0)
      const stats = JSON.parse(result.stdout)
      expect(stats.byType).toEqual([{ type: 'LOGINERROR', count: 2 }, { type: 'LOGIN', count: 1 }])
      expect(stats.failingUsers).toEqual([{ username: 'eve', count: 2, last: new Date(NOW - 2000).toISOString() }])
    })

    // MariaDB's roles need a default role per account; the reader case is shown once, on PostgreSQL.
    if (db.name === 'postgres') it('answers a reader account that may not call the procedure, warning that the read was not recorded', async () => {
      const role = `${ns.id}_reader`
      await ns.admin(`CREATE ROLE ${role} LOGIN IN ROLE authtrail_reader`)
      const reader = tempProject({ ...ns.properties, 'security.logging.db': POSTGRES_URL.replace('postgres@', `${role}@`) })
      try {
        const result = await runCli(['query', '--format', 'json', '--user', 'alice'], reader.dir)
        expect(result.code).toBe(0)
        expect(parseLines(result.stdout).map((r) => r.username)).toEqual(['alice'])
        expect(result.stderr).toMatch(/^authtrail: warning: this query was not recorded in the audit trail: .*permission denied/m)
      } finally {
        reader.remove()
        await ns.admin(`DROP OWNED BY ${role}; DROP ROLE ${role}`)
      }
    })
  })
}

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openProcedureSink } from '../../src/deliver/open-procedure-sink.js'
import { queryAudit } from '../../src/review/audit-query.js'
import { purgeAudit, purgedRows } from '../../src/review/purge.js'
import type { AuditEventType } from '../../src/types.js'
import { auditEvent } from '../helpers/audit-event.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'

const DAY = 86_400_000
const monthStart = (time: number) => new Date(Date.UTC(new Date(time).getUTCFullYear(), new Date(time).getUTCMonth(), 1))

for (const db of DATABASES) {
  describe.skipIf(db.unavailable !== undefined)(`purge on ${db.name}`, () => {
    let ns: TestNamespace
    const now = Date.now()
    const ages: ReadonlyArray<readonly [number, AuditEventType]> = [
      [400, 'LOGIN'], [200, 'LOGINERROR'], [200, 'LOGIN'], [100, 'LOGOUT'], [10, 'LOGIN'], [0, 'LOGINERROR'],
    ]
    beforeEach(async () => {
      ns = await db.create()
      if (ns.client.dialect === 'postgres') {
        // A partition for the oldest month, so that purge can drop it whole.
        const from = monthStart(now - 400 * DAY)
        const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1))
        await ns.admin(`CREATE TABLE securitylog_old PARTITION OF securitylog FOR VALUES FROM ('${from.toISOString()}') TO ('${to.toISOString()}')`)
      }
      const events = ages.map(([age, type], i) => auditEvent(type, { username: `u${i}`, time: now - age * DAY }))
      const sink = await openProcedureSink(ns.client, ns.proc, async () => {})
      await sink!.deliver(events)
    })
    afterEach(async () => {
      await ns?.teardown()
    })

    it('removes what is older than the cut-off and leaves recent rows, dropping whole partitions where it can', async () => {
      const result = await purgeAudit(ns.client, ns.table, { before: new Date(now - 90 * DAY), batchSize: 1 })
      const left = await queryAudit(ns.client, ns.table, {})
      expect(left.map((r) => r.username).sort()).toEqual(['u4', 'u5'])
      if (ns.client.dialect === 'postgres') {
        expect(result.droppedPartitions).toEqual([expect.stringContaining('securitylog_old')])
        expect(result.deletedRows).toBe(3)
      } else {
        expect(result.deletedRows).toBe(4)
      }
      expect(purgedRows(result)).toBe(4)
    })

    // MariaDB's table has no partitions to drop.
    if (db.name !== 'mariadb') it('counts the rows of the partitions it drops, which no DELETE reports', async () => {
      await ns.client.query(`INSERT INTO ${ns.table} (event_id, time, type, username, ip, session_id, data, session_context)
        SELECT gen_random_uuid(), $1::timestamptz + n * interval '1 minute', 'LOGIN', 'old' || n, '', '', '<data/>', '<sessioncontext/>' FROM generate_series(1, 4) n`, [monthStart(now - 400 * DAY).toISOString()])
      const result = await purgeAudit(ns.client, ns.table, { before: new Date(now - 300 * DAY) })
      expect(result).toEqual({ droppedPartitions: [expect.stringContaining('securitylog_old')], droppedRows: 5, deletedRows: 0 })
      expect(purgedRows(result)).toBe(5)
    })

    it('purges one event type only, leaving the others of the same age', async () => {
      const result = await purgeAudit(ns.client, ns.table, { before: new Date(now - 90 * DAY), types: ['LOGINERROR'] })
      expect(result.droppedPartitions).toEqual([])
      expect(result.deletedRows).toBe(1)
      const left = await queryAudit(ns.client, ns.table, {})
      expect(left.map((r) => r.username).sort()).toEqual(['u0', 'u2', 'u3', 'u4', 'u5'])
    })
  })
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditStats, failureBursts } from '../../src/review/audit-stats.js'
import type { AuditEvent } from '../../src/types.js'
import { auditEvent, deliverEvents } from '../helpers/audit-event.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'

const NOW = Date.UTC(2026, 10, 24, 12, 0, 0)
const MIN = 60_000

/**
 * mallory fails 6 times within 5 minutes from 198.51.100.7, bob 3 times spread over an hour from two
 * addresses, alice logs in and out; one old failure lies outside the 24-hour window.
 */
const EVENTS: AuditEvent[] = [
  ...Array.from({ length: 6 }, (_, i) => auditEvent('LOGINERROR', { username: 'mallory', ip: '198.51.100.7', host: '198.51.100.7', time: NOW - 60 * MIN + i * 30_000 })),
  ...Array.from({ length: 3 }, (_, i) => auditEvent('LOGINERROR', { username: 'bob', ip: i === 0 ? '203.0.113.1' : '198.51.100.7', host: '', time: NOW - 300 * MIN + i * 25 * MIN })),
  auditEvent('LOGIN', { username: 'alice', time: NOW - 10 * MIN }),
  auditEvent('LOGOUT', { username: 'alice', time: NOW - 5 * MIN }),
  auditEvent('LOGINERROR', { username: 'old', time: NOW - 3 * 86_400_000 }),
]

for (const db of DATABASES) {
  describe.skipIf(db.unavailable !== undefined)(`audit stats on ${db.name}`, () => {
    let ns: TestNamespace
    beforeAll(async () => {
      ns = await db.create()
      await deliverEvents(ns, EVENTS)
    })
    afterAll(async () => {
      await ns?.teardown()
    })

    it('counts per type and ranks failing users and addresses over the last 24 hours by default', async () => {
      const stats = await auditStats(ns.client, ns.table, {}, 10, NOW)
      expect(stats.since).toBe(new Date(NOW - 86_400_000).toISOString())
      expect(stats.total).toBe(11)
      expect(stats.byType).toEqual([{ type: 'LOGINERROR', count: 9 }, { type: 'LOGIN', count: 1 }, { type: 'LOGOUT', count: 1 }])
      expect(stats.failingUsers.map(({ username, count }) => [username, count])).toEqual([['mallory', 6], ['bob', 3]])
      expect(stats.failingUsers[0]!.last).toBe(new Date(NOW - 60 * MIN + 5 * 30_000).toISOString())
      expect(stats.failingIps.map(({ ip, count }) => [ip, count])).toEqual([['198.51.100.7', 8], ['203.0.113.1', 1]])
    })

    it('applies the filter and the top limit', async () => {
      const stats = await auditStats(ns.client, ns.table, { user: 'bob', since: new Date(NOW - 7 * 86_400_000).toISOString() }, 1, NOW)
      expect(stats.total).toBe(3)
      expect(stats.failingIps).toEqual([{ ip: '198.51.100.7', count: 2, last: new Date(NOW - 250 * MIN).toISOString() }])
    })

    it('finds a burst of failures within a window per user and per address, not failures spread out', async () => {
      const bursts = await failureBursts(ns.client, ns.table, {}, 15 * MIN, 5, 100, NOW)
      expect(bursts.map(({ by, value, count }) => [by, value, count]).sort()).toEqual([['ip', '198.51.100.7', 6], ['user', 'mallory', 6]])
      const window = bursts[0]!
      expect(Date.parse(window.to) - Date.parse(window.from)).toBe(15 * MIN)
      expect(Date.parse(window.from) % (15 * MIN)).toBe(0)
      expect(await failureBursts(ns.client, ns.table, {}, 15 * MIN, 7, 100, NOW)).toEqual([])
    })
  })
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseAuditFilter } from '../../src/review/audit-filter.js'
import type { AuditFilter } from '../../src/review/audit-filter.js'
import { queryAuditInserted, queryAuditPage } from '../../src/review/audit-query.js'
import type { AuditRow } from '../../src/review/audit-query.js'
import type { AuditEvent, AuditEventType } from '../../src/types.js'
import { auditEvent, deliverEvents } from '../helpers/audit-event.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'

const T0 = Date.UTC(2026, 10, 20, 8, 0, 0)
const TYPES: readonly AuditEventType[] = ['LOGIN', 'LOGINERROR', 'LOGOUT', 'SESSIONTIMEOUT', 'LOGINERROR']
const IPS = ['10.1.2.3', '10.200.0.1', '192.0.2.9', '::ffff:10.9.9.9', '2001:db8::5', '2001:db9::1', '', '<script>alert(1)</script>', '1.2.3', 'fe80::1%eth0', "'; DROP TABLE x; --"]

/** 44 events; groups of four share one millisecond, so page boundaries fall inside ties. */
const EVENTS: AuditEvent[] = Array.from({ length: 44 }, (_, i) =>
  auditEvent(TYPES[i % TYPES.length]!, { username: `u${i % 6}`, time: T0 + Math.floor(i / 4) * 60_000, ip: IPS[i % IPS.length]!, host: IPS[i % IPS.length]!, sessionId: `S${i}` }),
)

const newestFirst = (rows: readonly AuditRow[]) => rows.every((row, i) => i === 0 || row.time < rows[i - 1]!.time || (row.time === rows[i - 1]!.time && row.id < rows[i - 1]!.id))
const sessions = (rows: readonly AuditRow[]) => rows.map((row) => row.session_id).sort()
const expected = (keep: (event: AuditEvent) => boolean) => EVENTS.filter(keep).map((event) => event.sessionId).sort()
const parse = (params: Record<string, string | string[]>) => parseAuditFilter(params, { label: (name) => name, now: T0 + 3_600_000, maxLimit: 1000 })

for (const db of DATABASES) {
  describe.skipIf(db.unavailable !== undefined)(`audit queries on ${db.name}`, () => {
    let ns: TestNamespace
    beforeAll(async () => {
      ns = await db.create()
      await deliverEvents(ns, EVENTS)
    })
    afterAll(async () => {
      await ns?.teardown()
    })

    const all = (filter: AuditFilter) => queryAuditPage(ns.client, ns.table, { ...filter, limit: 1000 })

    it('pages through every row newest first exactly once with before cursors, ties included', async () => {
      const seen: AuditRow[] = []
      let cursor: string | undefined
      let pages = 0
      do {
        const page = await queryAuditPage(ns.client, ns.table, parse({ limit: '7', ...(cursor ? { before: cursor } : {}) }))
        if (pages === 0) expect(page.newer).toBeUndefined()
        else expect(page.newer).toBeDefined()
        seen.push(...page.rows)
        cursor = page.older
        pages++
      } while (cursor !== undefined)
      expect(pages).toBe(Math.ceil(EVENTS.length / 7))
      expect(seen).toHaveLength(EVENTS.length)
      expect(new Set(seen.map((row) => row.id)).size).toBe(EVENTS.length)
      expect(newestFirst(seen)).toBe(true)
    })

    it('goes back to the newer page with an after cursor, still newest first', async () => {
      const first = await queryAuditPage(ns.client, ns.table, parse({ limit: '9' }))
      const second = await queryAuditPage(ns.client, ns.table, parse({ limit: '9', before: first.older! }))
      const back = await queryAuditPage(ns.client, ns.table, parse({ limit: '9', after: second.newer! }))
      expect(back.rows).toEqual(first.rows)
      expect(back.newer).toBeUndefined()
      expect(back.older).toBe(first.older)
    })

    it('filters by type, user, exact address, outcome and time range', async () => {
      expect(sessions((await all(parse({ type: 'LOGOUT,SESSIONTIMEOUT' }))).rows)).toEqual(expected((e) => e.type === 'LOGOUT' || e.type === 'SESSIONTIMEOUT'))
      expect(sessions((await all(parse({ user: 'u2' }))).rows)).toEqual(expected((e) => e.username === 'u2'))
      expect(sessions((await all(parse({ ip: '192.0.2.9' }))).rows)).toEqual(expected((e) => e.ip === '192.0.2.9'))
      expect(sessions((await all(parse({ outcome: 'failure' }))).rows)).toEqual(expected((e) => e.type === 'LOGINERROR'))
      expect(sessions((await all(parse({ outcome: 'success', user: 'u0' }))).rows)).toEqual(expected((e) => e.type === 'LOGIN' && e.username === 'u0'))
      const since = new Date(T0 + 3 * 60_000).toISOString()
      const until = new Date(T0 + 7 * 60_000).toISOString()
      expect(sessions((await all(parse({ since, until }))).rows)).toEqual(expected((e) => e.time >= T0 + 3 * 60_000 && e.time < T0 + 7 * 60_000))
    })

    it('matches IPv4 and IPv6 networks, IPv4-mapped addresses as IPv4, and never fails on stored values that are not addresses', async () => {
      expect(sessions((await all(parse({ ip: '10.0.0.0/8' }))).rows)).toEqual(expected((e) => ['10.1.2.3', '10.200.0.1', '::ffff:10.9.9.9'].includes(e.ip)))
      expect(sessions((await all(parse({ ip: '10.128.0.0/9' }))).rows)).toEqual(expected((e) => e.ip === '10.200.0.1'))
      expect(sessions((await all(parse({ ip: '2001:db8::/32' }))).rows)).toEqual(expected((e) => e.ip === '2001:db8::5'))
      expect(sessions((await all(parse({ ip: '::/0' }))).rows)).toEqual(expected((e) => e.ip === '2001:db8::5' || e.ip === '2001:db9::1' || (db.name === 'mariadb' && e.ip === '::ffff:10.9.9.9')))
      expect((await all(parse({ ip: '0.0.0.0/0' }))).rows.length).toBe(EVENTS.filter((e) => /^(::ffff:)?\d+\.\d+\.\d+\.\d+$/.test(e.ip)).length)
      // Hostile text passed as a filter value is a parameter, never SQL.
      expect((await all(parse({ ip: "'; DROP TABLE x; --" }))).rows.length).toBe(EVENTS.filter((e) => e.ip === "'; DROP TABLE x; --").length)
    })

    it('pages a filtered view with cursors as well', async () => {
      const filter = { ip: '10.0.0.0/8', limit: '2' }
      const seen: AuditRow[] = []
      let cursor: string | undefined
      do {
        const page = await queryAuditPage(ns.client, ns.table, parse({ ...filter, ...(cursor ? { before: cursor } : {}) }))
        seen.push(...page.rows)
        cursor = page.older
      } while (cursor !== undefined)
      expect(sessions(seen)).toEqual(expected((e) => ['10.1.2.3', '10.200.0.1', '::ffff:10.9.9.9'].includes(e.ip)))
      expect(newestFirst(seen)).toBe(true)
    })

    it('reads rows inserted after an id in insertion order, for following the trail', async () => {
      const rows = (await all({})).rows
      const ids = rows.map((row) => row.id).sort((a, b) => a - b)
      const after = await queryAuditInserted(ns.client, ns.table, { limit: 1000 }, String(ids[39]))
      expect(after.map((row) => row.id)).toEqual(ids.slice(40))
      const filtered = await queryAuditInserted(ns.client, ns.table, parse({ type: 'LOGIN' }), '0')
      expect(filtered.map((row) => row.type)).toEqual(EVENTS.filter((e) => e.type === 'LOGIN').map(() => 'LOGIN'))
    })
  })
}

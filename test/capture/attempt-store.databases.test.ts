import { describe, expect, it } from 'vitest'
import { attemptKey } from '../../src/capture/attempt-store.js'
import type { SyncRequest } from '../../src/capture/attempt-store.js'
import { attemptTables, createDatabaseAttemptStore } from '../../src/capture/attempt-store-database.js'
import { DATABASES, namespacePerTest } from '../helpers/databases.js'

const NOW = Date.UTC(2026, 11, 1, 12)
const KEY = attemptKey('user', 'victim')
const request = (overrides: Partial<SyncRequest>): SyncRequest => ({
  now: NOW, deltas: [], watch: [KEY], resets: [], windowStart: NOW - 900_000, thresholds: { u: 5, i: 20 }, blockMs: 600_000, blocksSince: 0, ...overrides,
})

for (const db of DATABASES) {
  describe.skipIf(db.unavailable !== undefined)(`failed-login counts shared through ${db.name}`, () => {
    const ns = namespacePerTest(db)

    it('add up the instances\' failures, and let exactly one of two instances syncing at once create the lockout', async () => {
      const [a, b] = [createDatabaseAttemptStore(ns.client, ns.table), createDatabaseAttemptStore(ns.client, ns.table)]
      expect((await a.sync(request({ deltas: [{ key: KEY, bucket: NOW - 60_000, count: 2 }] }))).counts.get(KEY)).toBe(2)
      expect((await b.sync(request({ deltas: [{ key: KEY, bucket: NOW - 60_000, count: 2 }] }))).counts.get(KEY)).toBe(4)
      const results = await Promise.all([
        a.sync(request({ deltas: [{ key: KEY, bucket: NOW, count: 1 }] })),
        b.sync(request({ deltas: [{ key: KEY, bucket: NOW, count: 1 }] })),
      ])
      expect(results.flatMap((r) => r.created)).toEqual([{ key: KEY, attempts: expect.any(Number), until: NOW + 600_000 }])
      expect(results.flatMap((r) => r.created)[0]!.attempts).toBeGreaterThanOrEqual(5)
      // Both then see the lockout, and no second one is created while it lasts.
      const later = await b.sync(request({ now: NOW + 1000, deltas: [{ key: KEY, bucket: NOW, count: 9 }] }))
      expect(later.created).toEqual([])
      expect(later.blocks).toEqual([{ key: KEY, since: NOW, until: NOW + 600_000 }])
    })

    it('forget buckets that left the window and start a key again after a reset', async () => {
      const store = createDatabaseAttemptStore(ns.client, ns.table)
      await store.sync(request({ deltas: [{ key: KEY, bucket: NOW - 3_600_000, count: 3 }, { key: KEY, bucket: NOW, count: 1 }] }))
      expect((await store.sync(request({ now: NOW + 61_000 }))).counts.get(KEY)).toBe(1)
      const { attempts } = attemptTables(ns.client.dialect, ns.table)
      const [row] = await ns.client.query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM ${attempts}`)
      expect(Number(row!.n)).toBe(1)
      expect((await store.sync(request({ resets: [KEY] }))).counts.get(KEY)).toBeUndefined()
    })
  })
}

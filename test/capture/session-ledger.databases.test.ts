import { mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createDatabaseLedger, sessionLedgerTable } from '../../src/capture/session-ledger-database.js'
import { createMemoryLedger } from '../../src/capture/session-ledger.js'
import type { LedgerEntry, SessionLedger } from '../../src/capture/session-ledger.js'
import { createSessionSeal } from '../../src/capture/session-seal.js'
import { openLedgerJournal } from '../../src/capture/session-ledger-journal.js'
import { createSessionIdHasher } from '../../src/capture/session-id.js'
import { createMariadbClient } from '../../src/deliver/mariadb/mariadb-client.js'
import { createPostgresClient } from '../../src/deliver/postgres/postgres-client.js'
import { DATABASES } from '../helpers/databases.js'
import { eventually, sleep } from '../helpers/eventually.js'
import { tcpProxy } from '../helpers/tcp-proxy.js'
import type { TestNamespace } from '../helpers/databases.js'

const KEY = Buffer.from('ledger-test-key-0123456789abcdef0123456789', 'utf8')
const hash = createSessionIdHasher('hmac', KEY)

const entry = (sessionId: string, expiresAt: number, extra: Partial<LedgerEntry> = {}): LedgerEntry => ({
  user: { username: 'alice', userId: '7', profile: { email: 'a@example.org' } },
  auditSessionId: hash(sessionId),
  ip: '192.0.2.1',
  userAgent: 'Mozilla/5.0 <script>',
  loginTime: 1_000,
  expiresAt,
  absoluteExpiresAt: undefined,
  ...extra,
})

interface Backend {
  readonly name: string
  readonly unavailable: string | undefined
  open(): Promise<{ ledger: () => SessionLedger; reset(): Promise<void>; close(): Promise<void>; namespace?: TestNamespace }>
}

const BACKENDS: Backend[] = [
  {
    name: 'memory',
    unavailable: undefined,
    async open() {
      let ledger = createMemoryLedger()
      return { ledger: () => ledger, reset: async () => void (ledger = createMemoryLedger()), close: async () => {} }
    },
  },
  ...DATABASES.map((db): Backend => ({
    name: db.name,
    unavailable: db.unavailable,
    async open() {
      const namespace = await db.create()
      // Each call is another instance on the same table.
      const ledger = () => createDatabaseLedger({ client: namespace.client, auditTable: namespace.table, hashSessionId: hash, seal: createSessionSeal(KEY) })
      return { ledger, reset: () => namespace.admin('DELETE FROM securitylog_session'), close: () => namespace.teardown(), namespace }
    },
  })),
]

for (const backend of BACKENDS) {
  describe.skipIf(backend.unavailable !== undefined)(`the session ledger in ${backend.name}`, () => {
    let opened: Awaited<ReturnType<Backend['open']>>
    beforeAll(async () => {
      opened = await backend.open()
    }, 60_000)
    afterAll(async () => {
      await opened?.close()
    })
    beforeEach(async () => {
      await opened.reset()
    })

    it('gives due sessions back with every fact, the store id unsealed, and claims each once per lease', async () => {
      const a = opened.ledger()
      await a.add('due-1', entry('due-1', 5_000), true)
      await a.add('later-1', entry('later-1', 50_000), true)
      const claims = await a.claimDue(10_000, 100, 60_000)
      expect(claims.map((c) => c.sessionId)).toEqual(['due-1'])
      expect(claims[0]!.entry).toEqual(entry('due-1', 5_000))
      expect(claims[0]!.ended).toBeUndefined()
      // A second instance finds nothing to claim while the lease holds, and takes it over once it ran out.
      const b = backend.name === 'memory' ? a : opened.ledger()
      expect(await b.claimDue(10_000, 100, 60_000)).toEqual([])
      const takenOver = await b.claimDue(80_000, 100, 60_000)
      expect(takenOver.map((c) => c.sessionId).sort()).toEqual(['due-1', 'later-1'])
      for (const claim of takenOver) await b.extend(claim, 1_000_000)
    })

    it('reports an expiry once: expire, then forget; a removed session cannot be expired', async () => {
      const ledger = opened.ledger()
      await ledger.add('gone', entry('gone', 2_000_000), true)
      await ledger.add('out', entry('out', 2_000_000), true)
      const claims = await ledger.claimDue(2_000_001, 100, 1_000)
      const gone = claims.find((c) => c.sessionId === 'gone')!
      const out = claims.find((c) => c.sessionId === 'out')!
      expect(await ledger.remove('out')).toEqual(entry('out', 2_000_000))
      expect(await ledger.expire(out, 'timeout', 2_000_001)).toBe(false)
      expect(await ledger.expire(gone, 'timeout', 2_000_001)).toBe(true)
      // An expired session is no longer removable (the report is under way) ...
      expect(await ledger.remove('gone')).toBeUndefined()
      // ... and comes back, marked with how and when, to whoever claims it after a claimer died before
      // forgetting it: the event reported again has the same time and id.
      const again = await ledger.claimDue(2_000_002 + 1_000, 100, 1_000)
      expect(again.map((c) => [c.sessionId, c.ended?.kind])).toEqual([['gone', 'timeout']])
      await ledger.forget(again[0]!)
      expect(await ledger.claimDue(9_000_000, 100, 1_000)).toHaveLength(0)
    })

    it('keeps when a session was found lost, so that reporting it again gives the same event', async () => {
      const ledger = opened.ledger()
      await ledger.add('dropped', entry('dropped', 3_000_000), true)
      const [claim] = await ledger.claimDue(3_000_001, 100, 1_000)
      const found = Date.UTC(2026, 11, 1, 10, 0, 0, 123)
      expect(await ledger.expire(claim!, 'lost', found)).toBe(true)
      const [again] = await ledger.claimDue(3_000_002 + 1_000, 100, 1_000)
      expect(again!.ended).toEqual({ kind: 'lost', at: found })
      await ledger.forget(again!)
    })

    it('keeps an existing entry on adoption and replaces it on login', async () => {
      const ledger = opened.ledger()
      await ledger.add('s', entry('s', 3_000_000), true)
      await ledger.add('s', entry('s', 3_000_000, { ip: '198.51.100.9' }), false)
      expect((await ledger.remove('s'))?.ip).toBe('192.0.2.1')
      // Logins after the removal, of an app that does not regenerate session ids.
      await ledger.add('s', entry('s', 3_000_000, { loginTime: Date.now() + 1 }), true)
      await ledger.add('s', entry('s', 3_000_000, { ip: '198.51.100.9', loginTime: Date.now() + 2 }), true)
      expect((await ledger.remove('s'))?.ip).toBe('198.51.100.9')
    })

    it('writes a burst of new sessions in one statement, and a session removed meanwhile is never watched', async () => {
      const namespace = opened.namespace
      let inserts = 0
      // Logins' rows, not the marker the removal leaves.
      const isLogins = (text: string) => /^INSERT/.test(text) && text.includes('username')
      const ledger = namespace
        ? createDatabaseLedger({
            client: { ...namespace.client, query: (text: string, params?: readonly unknown[]) => ((inserts += isLogins(text) ? 1 : 0), namespace.client.query(text, params)) } as typeof namespace.client,
            auditTable: namespace.table,
            hashSessionId: hash,
            seal: createSessionSeal(KEY),
          })
        : opened.ledger()
      const added = Array.from({ length: 100 }, (_, i) => ledger.add(`burst-${i}`, entry(`burst-${i}`, 7_000_000), true))
      const removed = ledger.remove('burst-7')
      await Promise.all(added)
      expect((await removed)?.auditSessionId).toBe(hash('burst-7'))
      if (namespace) expect(inserts).toBe(1)
      expect(await ledger.count()).toBe(99)
    })

    // Only the database ledgers are shared: in one process, the session watch keeps its own ended sessions.
    if (backend.name !== 'memory') it('keeps a session removed on one instance from being adopted again by another, but not from a new login', async () => {
      const a = opened.ledger()
      const b = opened.ledger()
      await a.add('out', entry('out', 5_000), true)
      // Logged out within the write delay: its row never reached the table.
      const quick = a.add('quick', entry('quick', 5_000), true)
      expect(await a.remove('out')).toEqual(entry('out', 5_000))
      await a.remove('quick')
      await quick
      // Requests on b that loaded the sessions before their logouts adopt them after.
      await b.add('out', entry('out', 5_000, { ip: '198.51.100.9' }), false)
      await b.add('quick', entry('quick', 5_000, { ip: '198.51.100.9' }), false)
      expect(await b.claimDue(10_000, 100, 60_000)).toEqual([])
      expect(await b.claimDue(10_000, 100, 60_000, 'out')).toEqual([])
      expect(await b.count()).toBe(0)
      expect(await b.remove('out')).toBeUndefined()
      // The same id logging in again (an app that does not regenerate it) is a new session, watched again.
      await b.add('out', entry('out', 5_000, { ip: '203.0.113.5', loginTime: Date.now() + 1 }), true)
      const claims = await a.claimDue(10_000, 100, 60_000)
      expect(claims.map((c) => [c.sessionId, c.entry.ip])).toEqual([['out', '203.0.113.5']])
      await a.forget(claims[0]!)
      await Promise.all([a.close(), b.close()])
    })

    if (backend.name !== 'memory') it('keeps a login written after the logout that another instance recorded from bringing the session back', async () => {
      const namespace = opened.namespace!
      // a's login waits in a's batch (or its journal, through an outage) while the next request, the
      // logout, lands on b.
      let release = (): void => {}
      const held = new Promise<void>((resolve) => (release = resolve))
      const slow = { ...namespace.client, query: async (text: string, params?: readonly unknown[]) => (/^INSERT/.test(text) && (await held), namespace.client.query(text, params)) } as typeof namespace.client
      const a = createDatabaseLedger({ client: slow, auditTable: namespace.table, hashSessionId: hash, seal: createSessionSeal(KEY) })
      const b = opened.ledger()
      const login = a.add('late', entry('late', 5_000, { loginTime: Date.now() - 50 }), true)
      await b.add('late', entry('late', 5_000), false)
      await b.remove('late')
      release()
      await login
      expect(await b.claimDue(10_000, 100, 60_000)).toEqual([])
      expect(await b.count()).toBe(0)
      await Promise.all([a.close(), b.close()])
    })

    if (backend.name !== 'memory') it('watches a login of the same session id made after its removal, though the removal was written after the login was made', async () => {
      const namespace = opened.namespace!
      // The removal's write takes a while (a busy database): the login is made before it is done.
      const slow = { ...namespace.client, query: async (text: string, params?: readonly unknown[]) => (/^DELETE/.test(text) && (await sleep(100)), namespace.client.query(text, params)) } as typeof namespace.client
      const ledger = createDatabaseLedger({ client: slow, auditTable: namespace.table, hashSessionId: hash, seal: createSessionSeal(KEY) })
      await ledger.add('reused', entry('reused', 5_000, { loginTime: Date.now() - 1_000 }), true)
      const removed = ledger.remove('reused')
      await sleep(20)
      // An app that does not regenerate ids: the same id logs in again.
      const again = ledger.add('reused', entry('reused', 5_000, { ip: '203.0.113.5', loginTime: Date.now() }), true)
      await Promise.all([removed, again])
      const claims = await ledger.claimDue(10_000, 100, 60_000)
      expect(claims.map((c) => [c.sessionId, c.entry.ip])).toEqual([['reused', '203.0.113.5']])
      await ledger.forget(claims[0]!)
      await ledger.close()
    })

    if (backend.name !== 'memory') it('forgets a removal once it is long past, so that the table does not grow with logouts', async () => {
      const a = opened.ledger()
      await a.add('long-ago', entry('long-ago', 5_000), true)
      await a.remove('long-ago')
      const rows = async () => Number((await opened.namespace!.client.query<{ n: number | string }>(`SELECT count(*) AS n FROM ${sessionLedgerTable(opened.namespace!.client.dialect, opened.namespace!.table)}`))[0]!.n)
      expect(await rows()).toBe(1)
      // Never claimed, however late: not even by a claim that knows nothing of markers (an earlier authtrail's is this one).
      const b = opened.ledger()
      expect(await b.claimDue(Date.now() + 86_400_000, 100, 60_000, 'long-ago')).toEqual([])
      // A sweep a day later.
      expect(await b.claimDue(Date.now() + 86_400_000, 100, 60_000)).toEqual([])
      expect(await rows()).toBe(0)
      await b.add('long-ago', entry('long-ago', 5_000), false)
      expect((await b.claimDue(10_000, 100, 60_000)).map((c) => c.sessionId)).toEqual(['long-ago'])
      await Promise.all([a.close(), b.close()])
    })

    // Only the database ledgers hold rows that someone else could read, or share them between instances.
    if (backend.name !== 'memory') it('never stores a session id in clear', async () => {
      const ledger = opened.ledger()
      await ledger.add('secret-session-id-123', entry('secret-session-id-123', 4_000_000), true)
      const table = backend.name === 'mariadb' ? '`securitylog_session`' : `${opened.namespace!.table.split('.')[0]}.securitylog_session`
      const rows = await opened.namespace!.client.query<Record<string, unknown>>(`SELECT * FROM ${table}`)
      expect(JSON.stringify(rows)).not.toContain('secret-session-id-123')
      expect(await ledger.remove('secret-session-id-123')).toBeDefined()
    })

    if (backend.name === 'postgres' || backend.name === 'mariadb') it('lets concurrent instances claim disjoint sets', async () => {
      const writer = opened.ledger()
      for (let i = 0; i < 300; i++) await writer.add(`many-${i}`, entry(`many-${i}`, 5_000_000 + i), true)
      const instances = [opened.ledger(), opened.ledger(), opened.ledger()]
      const claimed = await Promise.all(instances.map((l) => l.claimDue(6_000_000, 50, 60_000)))
      const more = await Promise.all(instances.map((l) => l.claimDue(6_000_000, 500, 60_000)))
      const ids = [...claimed, ...more].flat().map((c) => c.sessionId)
      expect(ids).toHaveLength(300)
      expect(new Set(ids).size).toBe(300)
    })

    if (backend.name === 'postgres') it('finds due sessions through the index on due_at, not by scanning the table', async () => {
      const schema = opened.namespace!.id
      await opened.namespace!.admin(
        `INSERT INTO securitylog_session (session_id, sealed_id, profile, user_agent, login_time, expires_at, due_at)
         SELECT 'bulk-' || g, 'x', '{}', '', now(), now() + g * interval '1 second', now() + g * interval '1 second' FROM generate_series(1, 50000) g;
         ANALYZE securitylog_session`,
      )
      const plan = await opened.namespace!.client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN SELECT session_id FROM ${schema}.securitylog_session WHERE due_at <= now() + interval '10 seconds' AND (claimed_until IS NULL OR claimed_until < now()) ORDER BY due_at LIMIT 500 FOR UPDATE SKIP LOCKED`,
      )
      const text = plan.map((r) => r['QUERY PLAN']).join('\n')
      expect(text).toContain('securitylog_session_due_idx')
      expect(text).not.toMatch(/Seq Scan/)
    })
  })
}

for (const db of DATABASES.filter((d) => d.name !== 'pglite')) {
  describe.skipIf(db.unavailable !== undefined)(`the session ledger in ${db.name} while the database is unreachable`, () => {
    /** A namespace, and a client that reaches it through a proxy the test can take down. */
    const behindProxy = async () => {
      const namespace = await db.create()
      const url = new URL(namespace.properties['security.logging.db']!.replace(/^mariadb:/, 'mysql:'))
      const proxy = await tcpProxy(Number(url.port))
      const proxied = namespace.properties['security.logging.db']!.replace(`:${url.port}/`, `:${proxy.port}/`)
      const client = db.name === 'postgres' ? createPostgresClient({ url: proxied, poolSize: 1 }) : createMariadbClient({ url: proxied, poolSize: 1 })
      let isDown = false
      return {
        namespace,
        client,
        down: async () => {
          await proxy.down()
          isDown = true
        },
        up: async () => {
          await proxy.up()
          isDown = false
        },
        /** Brings the database back if the test ended during an outage, closes the ledger, and cleans up. */
        async teardown(ledger: SessionLedger) {
          if (isDown) await proxy.up()
          await ledger.close()
          await client.close()
          await proxy.close()
          await namespace.teardown()
        },
      }
    }
    it('keeps new sessions and removals until the database is back, then writes them: none lost, none resurrected', async () => {
      const outage = await behindProxy()
      const { namespace, client } = outage
      const warnings: string[] = []
      const ledger = createDatabaseLedger({ client, auditTable: namespace.table, hashSessionId: hash, seal: createSessionSeal(KEY), warn: (m) => warnings.push(m) })
      try {
        await ledger.add('written-before', entry('written-before', 5_000), true)
        await outage.down()
        // A login, then its logout, while the database is down; and two logins that stay.
        const added = Promise.all(['kept-1', 'kept-2', 'logged-out'].map((id) => ledger.add(id, entry(id, 5_000), true)))
        await sleep(100)
        const removedBefore = ledger.remove('written-before')
        const removedLater = ledger.remove('logged-out')
        await sleep(500)
        expect(warnings.join('\n')).toMatch(/unreachable/)
        await outage.up()
        await added
        expect(await removedBefore).toMatchObject({ auditSessionId: hash('written-before') })
        expect(await removedLater).toMatchObject({ auditSessionId: hash('logged-out') })
        const claims = await ledger.claimDue(10_000, 100, 60_000)
        expect(claims.map((c) => c.sessionId).sort()).toEqual(['kept-1', 'kept-2'])
        // A backlog of many statements' worth (ADD_BATCH rows a statement).
        await outage.down()
        const many = Array.from({ length: 7000 }, (_, i) => `backlog-${i}`)
        const queued = Promise.all(many.map((id) => ledger.add(id, entry(id, 20_000), true)))
        await sleep(300)
        await outage.up()
        await queued
        expect(await ledger.count()).toBe(2 + 7000)
      } finally {
        await outage.teardown(ledger)
      }
    }, 60_000)

    it('backs off while the database is down, however many logins keep coming', async () => {
      const outage = await behindProxy()
      const { namespace, client } = outage
      const warnings: string[] = []
      const ledger = createDatabaseLedger({ client, auditTable: namespace.table, hashSessionId: hash, seal: createSessionSeal(KEY), warn: (m) => warnings.push(m) })
      try {
        await outage.down()
        // A login every 10 ms for 3 s: each would have the next write 20 ms later, were the backoff not kept.
        const added: Array<Promise<void>> = []
        const start = Date.now()
        for (let i = 0; i < 300; i++) {
          added.push(ledger.add(`storm-${i}`, entry(`storm-${i}`, 60_000), true))
          await sleep(10)
        }
        const elapsed = Date.now() - start
        const tries = warnings.filter((w) => /unreachable/.test(w)).length
        // Backoff from 50-100 ms, doubling: n tries need at least 50 * (2^(n-1) - 1) ms (about 6 in 3 s),
        // where tries every 20 ms would be about 150.
        expect(tries).toBeGreaterThanOrEqual(2)
        expect(tries).toBeLessThanOrEqual(2 + Math.log2(elapsed / 50 + 1))
        await outage.up()
        await Promise.all(added)
        expect(await ledger.count()).toBe(300)
      } finally {
        await outage.teardown(ledger)
      }
    }, 90_000)

    it('with a journal, keeps what waits on disk instead of in memory, and the next process writes it after a shutdown during the outage', async () => {
      const namespace = await db.create()
      const url = new URL(namespace.properties['security.logging.db']!.replace(/^mariadb:/, 'mysql:'))
      const proxy = await tcpProxy(Number(url.port))
      const proxied = namespace.properties['security.logging.db']!.replace(`:${url.port}/`, `:${proxy.port}/`)
      const open = () => (db.name === 'postgres' ? createPostgresClient({ url: proxied, poolSize: 1 }) : createMariadbClient({ url: proxied, poolSize: 1 }))
      const dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-ledger-journal-'))
      const seal = createSessionSeal(KEY)
      const clients = [open(), open()]
      let down = false
      try {
        const first = createDatabaseLedger({ client: clients[0]!, auditTable: namespace.table, hashSessionId: hash, seal, journal: openLedgerJournal(dir, seal) })
        await first.add('written-before', entry('written-before', 5_000), true)
        await proxy.down()
        down = true
        const ids = Array.from({ length: 1200 }, (_, i) => `outage-${i}`)
        // Each login is told its session is safe while the database is still down: it is on disk.
        await Promise.all([...ids, 'logged-out'].map((id) => first.add(id, entry(id, 5_000), true)))
        void first.remove('logged-out')
        void first.remove('written-before')
        await sleep(200)
        // The app shuts down before the database is back.
        await first.close()
        const left = readdirSync(dir).filter((name) => name.startsWith('ledger-'))
        expect(left).toHaveLength(1)
        // The next process (the file renamed to a process id that is not running, as after a restart).
        renameSync(path.join(dir, left[0]!), path.join(dir, left[0]!.replace(/^ledger-\d+\./, `ledger-${2 ** 22 + 777}.`)))
        const next = createDatabaseLedger({ client: clients[1]!, auditTable: namespace.table, hashSessionId: hash, seal, journal: openLedgerJournal(dir, seal) })
        await proxy.up()
        down = false
        await eventually(async () => expect(await next.count()).toBe(1200), 30_000, 200)
        const claims = await next.claimDue(10_000, 2000, 60_000)
        expect(claims.map((c) => c.sessionId).sort()).toEqual([...ids].sort())
        await next.close()
        expect(readdirSync(dir)).toEqual([])
      } finally {
        if (down) await proxy.up()
        for (const client of clients) await client.close()
        await proxy.close()
        await namespace.teardown()
        rmSync(dir, { recursive: true, force: true })
      }
    }, 60_000)
  })
}

import { describe, expect, it } from 'vitest'
import { createOutbox } from '../../src/deliver/outbox.js'
import { createPostgresClient } from '../../src/deliver/postgres/postgres-client.js'
import type { SqlClient } from '../../src/deliver/sql-client.js'
import { verifyAudit } from '../../src/review/verify-audit.js'
import type { Finding } from '../../src/review/verify-chain.js'
import type { AuditEvent, Sink } from '../../src/types.js'
import { auditEvent } from '../helpers/audit-event.js'
import { CHAIN_KEY, chainedSink, checkpointKeys, publicKeyOf } from '../helpers/chain-keys.js'
import { DATABASES, POSTGRES_URL, namespacePerTest } from '../helpers/databases.js'
import { memoryLogger } from '../helpers/temp-project.js'

const keys = checkpointKeys()
const quiet = memoryLogger()
const logins = (n: number, prefix: string): AuditEvent[] => Array.from({ length: n }, (_, i) => auditEvent('LOGIN', { username: `${prefix}${i}`, time: Date.UTC(2026, 10, 21, 9, 0, 0, i) }))

function outboxFor(sink: Sink, extra: { concurrency?: number; maxBatch?: number } = {}) {
  return createOutbox({ sink, logger: quiet, maxBatch: extra.maxBatch ?? 10, concurrency: extra.concurrency ?? 1, retry: { initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 2 } })
}

for (const db of DATABASES.filter((d) => d.name !== 'mariadb')) {
  describe.skipIf(db.unavailable !== undefined)(`the chain on ${db.name} survives the ways delivery really goes`, () => {
    const ns = namespacePerTest(db)
    const verify = async (): Promise<Finding[]> => {
      const findings: Finding[] = []
      await verifyAudit(ns.client, ns.table, { key: Buffer.from(CHAIN_KEY), publicKey: publicKeyOf(keys.publicPem) }, (f) => findings.push(f))
      return findings
    }
    const links = async () => ns.client.query<{ chain_id: string; seq: string; duplicate: boolean }>(`SELECT chain_id::text AS chain_id, seq::text AS seq, duplicate FROM ${ns.table}_chain ORDER BY chain_id, seq`)
    const rowCount = async () => Number((await ns.client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ns.table}`))[0]!.n)

    it('a replay by another process links every replayed event again, as a duplicate, and leaves no hole', async () => {
      const first = logins(10, 'u')
      const a = await chainedSink(ns.client, ns.proc, keys.privatePem)
      await a.deliver(first)
      // The process died before marking the last six done: another one replays them from the spool, with new events.
      const b = await chainedSink(ns.client, ns.proc, keys.privatePem)
      await b.deliver([...first.slice(4), ...logins(2, 'v')])
      await Promise.all([a.close(), b.close()])
      expect(await rowCount()).toBe(12)
      const all = await links()
      expect(all).toHaveLength(18)
      expect(all.filter((l) => l.duplicate)).toHaveLength(6)
      expect(await verify()).toEqual([])
    })

    it('a delivery after a chain\'s final checkpoint starts a new chain, so nothing follows a final checkpoint', async () => {
      const sink = await chainedSink(ns.client, ns.proc, keys.privatePem)
      await sink.deliver(logins(3, 'early'))
      await sink.close()
      // A late event, say a CLI read recorded through the app's socket while it shuts down.
      await sink.deliver(logins(1, 'late'))
      await sink.close()
      const chains = new Set((await links()).map((l) => l.chain_id))
      expect(chains.size).toBe(2)
      expect(await verify()).toEqual([])
    })

    it('an event the procedure refuses, retried and then parked, takes no seq: no deletion is reported', async () => {
      await ns.admin(`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN IF NEW.username = 'poison' THEN RAISE EXCEPTION 'poison refused'; END IF; RETURN NEW; END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON securitylog FOR EACH ROW EXECUTE FUNCTION refuse_poison()`)
      const outbox = outboxFor(await chainedSink(ns.client, ns.proc, keys.privatePem))
      for (const username of ['before', 'poison', 'after']) outbox.enqueue(auditEvent('LOGINERROR', { username }))
      await outbox.flush()
      expect(outbox.parked().map((p) => p.event.username)).toEqual(['poison'])
      await outbox.close()
      expect((await links()).map((l) => Number(l.seq))).toEqual([1, 2])
      expect(await verify()).toEqual([])
    })

    it('batches in flight at once on several connections, from two instances, each keep a chain of their own', async () => {
      const sinks = await Promise.all([chainedSink(ns.client, ns.proc, keys.privatePem), chainedSink(ns.client, ns.proc, keys.privatePem)])
      const outboxes = sinks.map((sink) => outboxFor(sink, { concurrency: 3, maxBatch: 7 }))
      outboxes.forEach((outbox, n) => logins(150, `i${n}-`).forEach((event) => outbox.enqueue(event)))
      await Promise.all(outboxes.map((outbox) => outbox.close()))
      expect(await rowCount()).toBe(300)
      const all = await links()
      expect(all).toHaveLength(300)
      expect(new Set(all.map((l) => l.chain_id)).size).toBeGreaterThanOrEqual(2)
      expect(await verify()).toEqual([])
    })

    for (const committed of [true, false]) {
      it(`a connection lost ${committed ? 'after' : 'before'} the commit ends the chain; the retry goes on in a new one`, async () => {
        let cut = 1
        // The real database behind a connection that breaks once, on the chained call.
        const flaky: SqlClient = {
          ...ns.client,
          async query<Row>(text: string, params?: readonly unknown[]) {
            const lose = text.includes('_chained') && cut-- === 1
            if (lose && !committed) throw Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' })
            const rows = await ns.client.query<Row>(text, params)
            if (lose) throw Object.assign(new Error('Connection terminated unexpectedly'), { code: 'ECONNRESET' })
            return rows
          },
        }
        const warnings: string[] = []
        const outbox = outboxFor(await chainedSink(flaky, ns.proc, keys.privatePem, { warnings }))
        for (const event of logins(5, 'c')) outbox.enqueue(event)
        await outbox.close()
        expect(await rowCount()).toBe(5)
        const all = await links()
        expect(new Set(all.map((l) => l.chain_id)).size).toBe(committed ? 2 : 1)
        expect(all.filter((l) => l.duplicate)).toHaveLength(committed ? 5 : 0)
        expect(warnings.join('\n')).toMatch(/outcome of a delivery on chain .* is unknown/)
        expect(await verify()).toEqual([])
      })
    }
  })
}

const postgres = DATABASES.find((d) => d.name === 'postgres')!

describe.skipIf(postgres.unavailable !== undefined)('the chain written by the PostgreSQL writer role', () => {
  const ns = namespacePerTest(postgres)

  it('needs only INSERT through the procedure: the writer may neither change nor forge links and checkpoints', async () => {
    const login = ns.id
    await ns.admin(`DROP ROLE IF EXISTS ${login}; CREATE ROLE ${login} LOGIN IN ROLE authtrail_writer`)
    const writer = createPostgresClient({ url: POSTGRES_URL.replace('//postgres@', `//${login}@`), poolSize: 1 })
    try {
      const sink = await chainedSink(writer, ns.proc, keys.privatePem)
      await sink.deliver(logins(3, 'w'))
      await sink.close()
      for (const table of [`${ns.id}.securitylog_chain`, `${ns.id}.securitylog_checkpoint`]) {
        await expect(writer.query(`UPDATE ${table} SET hash = 'forged'`)).rejects.toThrow(/permission denied/)
        await expect(writer.query(`DELETE FROM ${table}`)).rejects.toThrow(/permission denied/)
        await expect(writer.query(`TRUNCATE ${table}`)).rejects.toThrow(/permission denied/)
        await expect(writer.query(`INSERT INTO ${table} SELECT * FROM ${table}`)).rejects.toThrow(/permission denied/)
      }
      const findings: Finding[] = []
      await verifyAudit(ns.client, ns.table, { key: Buffer.from(CHAIN_KEY), publicKey: publicKeyOf(keys.publicPem) }, (f) => findings.push(f))
      expect(findings).toEqual([])
      expect(Number((await ns.client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ns.id}.securitylog_checkpoint WHERE final`))[0]!.n)).toBe(1)
    } finally {
      await writer.close()
      await ns.admin(`DROP OWNED BY ${login}; DROP ROLE ${login}`)
    }
  })
})

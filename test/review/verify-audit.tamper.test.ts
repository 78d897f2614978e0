import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createDescriber } from '../../src/describe/event-xml.js'
import { verifyAudit } from '../../src/review/verify-audit.js'
import type { Finding } from '../../src/review/verify-chain.js'
import type { Sink } from '../../src/types.js'
import { auditEvent } from '../helpers/audit-event.js'
import { CHAIN_KEY, chainedSink, checkpointKeys, publicKeyOf } from '../helpers/chain-keys.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'

const describeEvent = createDescriber()
const keys = checkpointKeys()
const EVENTS = 20

for (const db of DATABASES.filter((d) => d.name !== 'mariadb')) {
  describe.skipIf(db.unavailable !== undefined)(`authtrail verify on ${db.name}, after tampering with the audit table`, () => {
    let ns: TestNamespace
    let sink: Sink
    const users = Array.from({ length: EVENTS }, (_, i) => `user${i}`)
    const events = users.map((username, i) => auditEvent(i % 3 === 0 ? 'LOGINERROR' : 'LOGIN', { username, time: Date.UTC(2026, 10, 20, 8, 0, 0, 0) + i * 1000 }))

    beforeEach(async () => {
      ns = await db.create()
      sink = await chainedSink(ns.client, ns.proc, keys.privatePem)
      // Four batches of five on one chain, with a checkpoint after each (every 5 links), and the final one at close.
      for (let i = 0; i < EVENTS; i += 5) await sink.deliver(events.slice(i, i + 5))
      await sink.close()
    })
    afterEach(async () => {
      await ns?.teardown()
    })

    const verify = async (): Promise<Finding[]> => {
      const findings: Finding[] = []
      await verifyAudit(ns.client, ns.table, { key: Buffer.from(CHAIN_KEY), publicKey: publicKeyOf(keys.publicPem), pageSize: 7 }, (f) => findings.push(f))
      return findings
    }
    const rowId = async (username: string) => Number((await ns.client.query<{ id: string }>(`SELECT id::text AS id FROM ${ns.table} WHERE username = $1`, [username]))[0]!.id)
    const kinds = (findings: Finding[]) => findings.map((f) => `${f.kind}${f.rowId !== undefined ? ` row ${f.rowId}` : ''}${f.seq !== undefined ? ` seq ${f.seq}` : ''}`)

    it('finds nothing in a table written only through the chained procedure', async () => {
      expect(await verify()).toEqual([])
      const [links] = await ns.client.query<{ n: string; chains: string }>(`SELECT count(*)::text AS n, count(DISTINCT chain_id)::text AS chains FROM ${ns.table}_chain`)
      expect(links).toEqual({ n: String(EVENTS), chains: '1' })
    })

    it('reports an edited username as a modified row, and only that row', async () => {
      const id = await rowId('user7')
      await ns.admin(`UPDATE securitylog SET username = 'mallory' WHERE username = 'user7'`)
      expect(kinds(await verify())).toEqual([`modified row ${id} seq 8`])
    })

    it('reports edited XML and an edited time as modified rows', async () => {
      const [a, b] = [await rowId('user2'), await rowId('user12')]
      await ns.admin(`UPDATE securitylog SET data = '<data><HttpSessionId>X</HttpSessionId></data>' WHERE username = 'user2'`)
      await ns.admin(`UPDATE securitylog SET time = time - interval '1 hour' WHERE username = 'user12'`)
      expect(kinds(await verify())).toEqual([`modified row ${a} seq 3`, `modified row ${b} seq 13`])
    })

    it('reports a deleted row as deleted, naming its event', async () => {
      await ns.admin(`DELETE FROM securitylog WHERE username = 'user3'`)
      const findings = await verify()
      expect(kinds(findings)).toEqual(['deleted seq 4'])
      expect(findings[0]!.eventId).toBe(events[3]!.id)
    })

    it('reports a row deleted with its chain link as a seq gap', async () => {
      await ns.admin(`DELETE FROM securitylog WHERE username = 'user10'; DELETE FROM securitylog_chain WHERE seq = 11`)
      expect(kinds(await verify())).toEqual(['deleted seq 11'])
    })

    it('reports two rows that swapped places (ids exchanged) as out of order, not as modified', async () => {
      const [a, b] = [await rowId('user4'), await rowId('user5')]
      await ns.admin(`WITH gone AS (DELETE FROM securitylog WHERE username IN ('user4', 'user5') RETURNING *)
        INSERT INTO securitylog (id, event_id, time, type, username, ip, session_id, data, session_context) OVERRIDING SYSTEM VALUE
        SELECT CASE WHEN username = 'user4' THEN ${b} ELSE ${a} END, event_id, time, type, username, ip, session_id, data, session_context FROM gone`)
      expect(kinds(await verify())).toEqual([`out-of-order row ${a} seq 6`])
    })

    it('reports a row written behind authtrail\'s back as inserted', async () => {
      const forged = describeEvent(auditEvent('LOGIN', { username: 'ghost' }))
      await ns.admin(`CALL securitylogging('${forged.sessionContext}'::xml, '${forged.data}'::xml, 'LOGIN')`)
      const findings = await verify()
      expect(kinds(findings)).toEqual([`inserted row ${await rowId('ghost')}`])
      expect(findings[0]!.eventId).toBe(forged.event.id)
    })

    it('reports a tail cut off with its links as deleted, thanks to the final checkpoint', async () => {
      await ns.admin(`DELETE FROM securitylog WHERE username IN ('user17', 'user18', 'user19'); DELETE FROM securitylog_chain WHERE seq > 17`)
      const findings = await verify()
      expect(kinds(findings)).toEqual(['deleted seq 20'])
      expect(findings[0]!.detail).toContain('links 18-20 are gone')
    })

    it('reports a whole chain whose rows and links were deleted as deleted, from the checkpoints left behind', async () => {
      const other = await chainedSink(ns.client, ns.proc, keys.privatePem)
      const later = Array.from({ length: 7 }, (_, i) => auditEvent('LOGIN', { username: `other${i}`, time: Date.UTC(2026, 10, 20, 9, 0, 0, 0) + i * 1000 }))
      await other.deliver(later.slice(0, 5))
      await other.deliver(later.slice(5))
      await other.close()
      const [{ chain_id: chainId }] = await ns.client.query<{ chain_id: string }>(`SELECT DISTINCT chain_id::text AS chain_id FROM ${ns.table}_chain WHERE seq = 7 AND event_id = $1::uuid`, [later[6]!.id]) as [{ chain_id: string }]
      await ns.admin(`DELETE FROM securitylog WHERE username LIKE 'other%'; DELETE FROM securitylog_chain WHERE chain_id = '${chainId}'`)
      const findings = await verify()
      expect(kinds(findings)).toEqual(['deleted seq 7'])
      expect(findings[0]).toMatchObject({ chainId, detail: expect.stringContaining('links 1-7 and their rows are gone') })
      // A range that ends before the chain's checkpoints were signed does not look at them.
      const ranged: Finding[] = []
      await verifyAudit(ns.client, ns.table, { key: Buffer.from(CHAIN_KEY), publicKey: publicKeyOf(keys.publicPem), until: '2000-01-01T00:00:00Z' }, (f) => ranged.push(f))
      expect(ranged).toEqual([])
    })

    it('reports a checkpoint whose signature was forged, and a link appended after the final checkpoint', async () => {
      await ns.admin(`UPDATE securitylog_checkpoint SET signature = 'AAAA' || substr(signature, 5) WHERE seq = 10`)
      await ns.admin(`INSERT INTO securitylog_chain (chain_id, seq, event_id, time, type, prev_hash, hash, duplicate)
        SELECT chain_id, 21, event_id, time, type, hash, hash, true FROM securitylog_chain WHERE seq = 20`)
      expect(kinds(await verify())).toEqual(['checkpoint seq 10', 'inserted seq 21'])
    })

    it('reports a checkpoint checked against another public key', async () => {
      const findings: Finding[] = []
      await verifyAudit(ns.client, ns.table, { key: Buffer.from(CHAIN_KEY), publicKey: publicKeyOf(checkpointKeys().publicPem) }, (f) => findings.push(f))
      expect(new Set(findings.map((f) => f.kind))).toEqual(new Set(['checkpoint']))
      expect(findings[0]!.detail).toMatch(/signed by key [0-9a-f]{16}, not by the public key given/)
    })

    it('reports every row as modified when checked with another chain key', async () => {
      const findings: Finding[] = []
      await verifyAudit(ns.client, ns.table, { key: Buffer.from('another-key-0123456789abcdef0123456789'), publicKey: publicKeyOf(keys.publicPem) }, (f) => findings.push(f))
      expect(findings.filter((f) => f.kind === 'modified')).toHaveLength(EVENTS)
    })
  })
}

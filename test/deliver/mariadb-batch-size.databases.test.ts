import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createOutbox } from '../../src/deliver/outbox.js'
import { createMariadbProcedureSink } from '../../src/deliver/mariadb/mariadb-procedure.js'
import type { MariadbProcedureOptions } from '../../src/deliver/mariadb/mariadb-procedure.js'
import { isUnavailable } from '../../src/deliver/sql-client.js'
import type { SqlClient } from '../../src/deliver/sql-client.js'
import { DeliveryError } from '../../src/types.js'
import type { AuditEvent, Sink } from '../../src/types.js'
import { auditEvent } from '../helpers/audit-event.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { sleep } from '../helpers/eventually.js'
import { memoryLogger } from '../helpers/temp-project.js'

const mariadb = DATABASES.find((db) => db.name === 'mariadb')!

/**
 * An event of `bytes` in its User-Agent. With the default fill half of it is backslashes: JSON doubles
 * them and the SQL quoting doubles them again, so a batch call is 2.5 times as long as the documents.
 */
const bigEvent = (bytes: number, i: number, fill = 'a\\'): AuditEvent =>
  auditEvent('LOGIN', { username: `user${i}`, userAgent: `Mozilla/5.0 (${i}) ` + fill.repeat(Math.floor(bytes / fill.length)) })

/** The client, recording the errno of every statement that failed. */
function recording(client: SqlClient): { client: SqlClient; errors: unknown[] } {
  const errors: unknown[] = []
  return {
    errors,
    client: {
      ...client,
      async query(text, params) {
        try {
          return await client.query(text, params)
        } catch (err) {
          errors.push((err as { errno?: unknown }).errno ?? (err as { code?: unknown }).code)
          throw err
        }
      },
    },
  }
}

describe.skipIf(mariadb.unavailable !== undefined)('MariaDB past max_allowed_packet', () => {
  let ns: TestNamespace
  let maxPacket: number
  beforeEach(async () => {
    ns = await mariadb.create()
    maxPacket = Number((await ns.client.query<{ max: unknown }>('SELECT @@max_allowed_packet AS max'))[0]!.max)
  })
  afterEach(async () => {
    await ns?.teardown()
  })

  const sink = async (client: SqlClient, options?: MariadbProcedureOptions): Promise<Sink> =>
    (await createMariadbProcedureSink(client, ns.proc, async () => {}, undefined, options))!

  const rows = async (): Promise<{ n: number; distinct: number }> => {
    const [row] = await ns.client.query<{ n: unknown; d: unknown }>(`SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM ${ns.table}`)
    return { n: Number(row!.n), distinct: Number(row!.d) }
  }

  it('leaves the pool usable after the server hung up on a statement too large', async () => {
    const tooLong = await ns.client.query('SELECT LENGTH(?) AS n', ['a'.repeat(maxPacket)]).catch((e: unknown) => e)
    expect((tooLong as { errno?: unknown }).errno).toBe(1153)
    for (let i = 0; i < 4; i++) expect(await ns.client.query('SELECT 1 AS one')).toEqual([{ one: 1 }])
  })

  it('is stored whole, each event once, in calls sized from the server\'s own max_allowed_packet', async () => {
    // 1.2 packets of documents, 3 once quoted.
    const events = Array.from({ length: 400 }, (_, i) => bigEvent(Math.ceil((maxPacket * 1.2) / 400), i))
    const { client, errors } = recording(ns.client)
    await (await sink(client)).deliver(events)
    expect(errors).toEqual([])
    expect(await rows()).toEqual({ n: 400, distinct: 400 })
  }, 120_000)

  it('is halved when the server still finds a call too large, and the pool goes on after it hung up', async () => {
    // Told of four times the real packet, the sink makes one call a little over the real one. (Far over
    // it, the server hangs up while mysql2 is still writing, an ECONNRESET no client can tell from an outage.)
    const events = Array.from({ length: 200 }, (_, i) => bigEvent(Math.ceil((maxPacket * 1.05) / 200), i, 'a'))
    const { client, errors } = recording(ns.client)
    await (await sink(client, { maxAllowedPacket: maxPacket * 4 })).deliver(events)
    expect(errors).toEqual([1153])
    expect(await rows()).toEqual({ n: 200, distinct: 200 })
  }, 120_000)

  it('refuses an event too large on its own as that event\'s permanent error, and stores the rest', async () => {
    // 1.05 packets as JSON, refused before it is sent.
    const events = [bigEvent(1000, 0), bigEvent(maxPacket * 0.7, 1), bigEvent(1000, 2)]
    const { client, errors } = recording(ns.client)
    const err = await (await sink(client)).deliver(events).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DeliveryError)
    const failed = (err as DeliveryError).failed
    expect([...failed.keys()]).toEqual([events[1]!.id])
    const failure = failed.get(events[1]!.id)!
    expect(failure.message).toMatch(/max_allowed_packet/)
    expect(isUnavailable(failure)).toBe(false)
    expect((failure as { permanent?: unknown }).permanent).toBe(true)
    expect(errors).toEqual([])
    expect(await rows()).toEqual({ n: 2, distinct: 2 })
  }, 120_000)

  it('refuses an event the server answers ER_NET_PACKET_TOO_LARGE for, not waiting on it as an outage', async () => {
    // A little over the real packet, under the one the sink is told of.
    const events = [bigEvent(1000, 0), bigEvent(maxPacket * 1.05, 1, 'a'), bigEvent(1000, 2)]
    const { client, errors } = recording(ns.client)
    const outbox = createOutbox({ sink: await sink(client, { maxAllowedPacket: maxPacket * 2.2 }), logger: memoryLogger(), maxBatch: 10, flushDelayMs: 50 })
    for (const event of events) outbox.enqueue(event)
    const flushed = await Promise.race([outbox.flush().then(() => true), sleep(30_000).then(() => false)])
    expect(flushed).toBe(true)
    expect(errors).toContain(1153)
    expect(outbox.parked().map((p) => p.event.id)).toEqual([events[1]!.id])
    expect(outbox.metrics()).toMatchObject({ delivered: 2, parked: 1, queued: 0 })
    expect(await rows()).toEqual({ n: 2, distinct: 2 })
    await outbox.close()
  }, 120_000)

  it('sends a split batch again after an outage without the calls already stored', async () => {
    const events = Array.from({ length: 30 }, (_, i) => bigEvent(20_000, i, 'a'))
    const sent: string[] = []
    let outage = true
    const client: SqlClient = {
      ...ns.client,
      async query(text, params) {
        const ids = text.startsWith('CALL') ? [...String(params?.[0] ?? '').matchAll(/<eventid>([^<]+)<\/eventid>/g)].map((m) => m[1]!) : []
        // The second call of the first delivery meets a connection reset.
        if (ids.length > 0 && sent.length > 0 && outage) {
          outage = false
          throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })
        }
        const rows = await ns.client.query(text, params)
        sent.push(...ids)
        return rows as never
      },
    }
    const target = await sink(client, { maxAllowedPacket: 300_000 })
    const first = await target.deliver(events).catch((e: unknown) => e)
    expect(isUnavailable(first)).toBe(true)
    await target.deliver(events)
    expect(sent.length).toBe(30)
    expect(new Set(sent).size).toBe(30)
    expect(await rows()).toEqual({ n: 30, distinct: 30 })
  }, 120_000)
})

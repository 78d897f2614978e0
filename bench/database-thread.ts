/**
 * Where the database thread's time goes with the embedded store: what the login benchmarks cannot
 * split. In one PGlite (in memory, on this thread, as the database thread runs it) with
 * procedures/securitylogging.sql installed, per event or row:
 *  - securitylogging_batch at batch sizes 10, 30 (what 20 ms of logins made with the former default
 *    flush), 100 and 1000, each against batches of 1000;
 *  - carrying the same parameters into PGlite and back without storing anything (a SELECT of their
 *    lengths), against the whole batch call;
 *  - describing an event (two XML documents), against the batch call;
 *  - session ledger rows (insertLedgerRows: sealing and one statement) in batches of 15 and 100.
 * The best of 5 repeats is reported: the floor is what the code costs, the rest is the machine. The
 * sizes run in the order given, into one table that grows, so larger batches meet a larger table.
 *
 * Run: npm run bench, or node --import tsx bench/database-thread.ts
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { insertLedgerRows } from '../src/capture/session-ledger-rows.js'
import type { LedgerAdd } from '../src/capture/session-ledger-rows.js'
import { createSessionSeal } from '../src/capture/session-seal.js'
import { createDescriber } from '../src/describe/event-xml.js'
import { openPgliteDatabase } from '../src/deliver/pglite/pglite-database.js'
import { batchParameters } from '../src/deliver/postgres/postgres-procedure.js'
import type { AuditEvent, DescribedEvent } from '../src/types.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const EVENTS = 3000
const REPEATS = 5
const AGENT = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'

/** The login bench's events: a good and a bad password alternating. */
function loginEvent(i: number): AuditEvent {
  const failed = i % 2 === 0
  return {
    id: randomUUID(), type: failed ? 'LOGINERROR' : 'LOGIN', time: Date.now(), sessionId: randomBytes(16).toString('hex').toUpperCase(), username: 'alice', userId: '1',
    ip: '::ffff:127.0.0.1', host: '::ffff:127.0.0.1', userAgent: failed ? 'curl/8.5.0' : AGENT, method: failed ? 'FORM' : '', message: failed ? 'Incorrect password.' : '', urlParams: [], profile: {},
  }
}

/** Best of {@link REPEATS}, in µs per item: `run` handles `items` items each time. */
async function best(items: number, run: () => Promise<void> | void): Promise<number> {
  let fastest = Number.POSITIVE_INFINITY
  for (let i = 0; i < REPEATS; i++) {
    const start = performance.now()
    await run()
    fastest = Math.min(fastest, performance.now() - start)
  }
  return (fastest * 1000) / items
}

export async function benchDatabaseThread(): Promise<Record<string, string | number>> {
  // The store as the database thread opens it, in memory: the app's client and install path.
  const { client } = await openPgliteDatabase({ kind: 'embedded', dir: 'memory://', schema: 'public', table: 'securitylog', installSql: readFileSync(path.join(ROOT, 'procedures/securitylogging.sql'), 'utf8') })
  try {
    const describe = createDescriber()
    const described = Array.from({ length: EVENTS }, (_, i) => describe(loginEvent(i)))
    // Fresh ids each time: a repeated id would be skipped by ON CONFLICT, which costs less than a row.
    const freshIds = (): DescribedEvent[] => described.map((e) => ({ ...e, event: { ...e.event, id: randomUUID() } }))
    const call = async (size: number, fresh = freshIds()): Promise<void> => {
      for (let i = 0; i < fresh.length; i += size) {
        await client.query('CALL securitylogging_batch($1::xml[], $2::xml[], $3::varchar[], $4::uuid[], $5::timestamptz[], $6::text[], $7::text[], $8::text[])', batchParameters(fresh.slice(i, i + size)))
      }
    }
    await call(100)
    const perEvent = new Map<number, number>()
    for (const size of [10, 30, 100, 1000]) {
      const sets = Array.from({ length: REPEATS }, freshIds)
      perEvent.set(size, await best(EVENTS, () => call(size, sets.pop())))
    }
    const carried = await best(EVENTS, async () => {
      for (let i = 0; i < EVENTS; i += 100) {
        await client.query('SELECT length(array_to_string($1::text[], \'\')) + length(array_to_string($2::text[], \'\')) + cardinality($3::text[]) + cardinality($4::text[]) + cardinality($5::text[]) + cardinality($6::text[]) + cardinality($7::text[]) + cardinality($8::text[])', batchParameters(described.slice(i, i + 100)))
      }
    })
    const describing = await best(EVENTS, () => {
      for (let i = 0; i < EVENTS; i++) describe(loginEvent(i))
    })
    const seal = createSessionSeal(randomBytes(32))
    const ledgerRows = (): LedgerAdd[] => Array.from({ length: EVENTS }, (_, i) => ({
      sessionId: randomBytes(24).toString('base64url'),
      entry: { auditSessionId: randomBytes(16).toString('hex').toUpperCase(), user: { username: 'alice', userId: '1', profile: {} }, ip: '::ffff:127.0.0.1', userAgent: AGENT, loginTime: Date.now() + i, expiresAt: Date.now() + 300_000, absoluteExpiresAt: undefined },
    }))
    const ledger = async (size: number): Promise<number> => {
      // New sessions each repeat: a row already there would take the cheaper update path of a re-login.
      const sets = Array.from({ length: REPEATS }, ledgerRows)
      return best(EVENTS, async () => {
        const rows = sets.pop()!
        for (let i = 0; i < rows.length; i += size) await insertLedgerRows(client, 'securitylog_session', seal, rows.slice(i, i + size), true)
      })
    }
    const ledger15 = await ledger(15)
    const ledger100 = await ledger(100)
    const at1000 = perEvent.get(1000)!
    const at100 = perEvent.get(100)!
    const µs = (value: number): number => Number(value.toFixed(1))
    return {
      ...Object.fromEntries([...perEvent].map(([size, value]) => [`securitylogging_batch, batches of ${size}: µs per event (× batches of 1000)`, `${µs(value)} (× ${(value / at1000).toFixed(2)})`])),
      'carrying the same parameters in and out, batches of 100: µs per event (share of the call)': `${µs(carried)} (${((carried / at100) * 100).toFixed(0)} %)`,
      'making and describing one event (two XML documents): µs (share of a batch-of-100 call)': `${µs(describing)} (${((describing / at100) * 100).toFixed(0)} %)`,
      'session ledger rows (seal + insert), batches of 15 / 100: µs per row': `${µs(ledger15)} / ${µs(ledger100)}`,
    }
  } finally {
    await client.close()
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.table(await benchDatabaseThread())
}

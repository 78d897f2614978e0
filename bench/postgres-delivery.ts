/**
 * Events per second into PostgreSQL, three ways in one run, on the same machine and table definition:
 *  - authtrail: events enqueued in the outbox, handed to the database thread, described there and
 *    delivered in batches through securitylogging_batch over the default pool of 2 connections (the
 *    path an app uses), and the same with the XML already built, as the two baselines get it (delivery
 *    only, on the calling thread);
 *  - one awaited CALL securitylogging(...) per event (what Showcase did);
 *  - COPY of the same rows straight into the table: the practical ceiling;
 *  - authtrail's path with tamper evidence on (securitylogging_chained: a chain link per event, an
 *    Ed25519 checkpoint every 1000 links), against the same path without it.
 * Each run gets a fresh schema with procedures/securitylogging.sql installed.
 *
 * Run: npm run bench, or node --import tsx bench/postgres-delivery.ts
 * (BENCH_EVENTS 20000, BENCH_ROUNDS 3; medians are reported)
 */
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { startDatabaseWorker } from '../src/deliver/database-worker.js'
import { createOutbox } from '../src/deliver/outbox.js'
import { createPostgresClient } from '../src/deliver/postgres/postgres-client.js'
import { createPostgresProcedureSink } from '../src/deliver/postgres/postgres-procedure.js'
import { createChainedCalls } from '../src/deliver/postgres/postgres-chain.js'
import { createCheckpointSigner } from '../src/deliver/checkpoint-signature.js'
import { createChainLanes } from '../src/deliver/tamper-chain.js'
import { createDescriber } from '../src/describe/event-xml.js'
import type { AuditEvent, AuditEventType } from '../src/types.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const TYPES: readonly AuditEventType[] = ['LOGIN', 'LOGINERROR', 'LOGOUT', 'SESSIONTIMEOUT']
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1',
  'curl/8.5.0',
]

function events(n: number): AuditEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: randomUUID(), type: TYPES[i % 4]!, time: Date.now() - i, sessionId: randomBytes(16).toString('hex').toUpperCase(), username: `user${i % 500}`,
    userId: String(i % 500), ip: `10.0.${(i >> 8) & 255}.${i & 255}`, host: `10.0.${(i >> 8) & 255}.${i & 255}`, userAgent: AGENTS[i % AGENTS.length]!,
    method: 'FORM', message: i % 4 === 1 ? 'Incorrect password.' : '', urlParams: [], profile: { email: `user${i % 500}@example.org` },
  }))
}

async function freshSchema(admin: pg.Client): Promise<string> {
  const schema = `bench_${Date.now().toString(36)}_${randomBytes(2).toString('hex')}`
  await admin.query(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`)
  await admin.query(readFileSync(path.join(ROOT, 'procedures/securitylogging.sql'), 'utf8'))
  await admin.query('SET search_path TO DEFAULT')
  return schema
}

async function count(admin: pg.Client, schema: string): Promise<number> {
  return Number((await admin.query(`SELECT count(*) AS n FROM ${schema}.securitylog`)).rows[0].n)
}

const csv = (value: string) => `"${value.replaceAll('"', '""')}"`

const SIGNER = createCheckpointSigner(generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'bench key')

/** authtrail's path (outbox, describe, batches of 1000 over 2 connections) into a fresh schema, chained or not. */
async function outboxPath(admin: pg.Client, schemas: string[], chained: boolean): Promise<number> {
  const schema = await freshSchema(admin)
  schemas.push(schema)
  const client = createPostgresClient({ url: URL, poolSize: 2 })
  const proc = `${schema}.securitylogging`
  const lanes = createChainLanes({ key: randomBytes(32), signer: SIGNER, checkpointEvents: 1000, checkpointMs: 60_000 }, console.warn)
  const sink = await createPostgresProcedureSink(client, proc, () => client.close(), createDescriber(), chained ? createChainedCalls(proc, lanes, console.warn) : undefined)
  const outbox = createOutbox({ sink, logger: { info() {}, warn: console.warn, error: console.error }, maxBatch: 1000, flushDelayMs: 20, concurrency: 2 })
  const input = events(EVENTS)
  const start = performance.now()
  for (const event of input) outbox.enqueue(event)
  await outbox.flush()
  const rate = EVENTS / ((performance.now() - start) / 1000)
  await outbox.close()
  if ((await count(admin, schema)) !== EVENTS) throw new Error(`${chained ? 'chained' : 'unchained'} path lost events`)
  return rate
}

/** Events per second of each method in one round, each into a fresh schema. */
async function round(admin: pg.Client, schemas: string[]): Promise<{ batched: number; deliveryOnly: number; perCall: number; copy: number; unchained: number; chained: number }> {
  const describe = createDescriber()
  // authtrail's path with the shipped defaults: outbox → database thread (describe, then
  // securitylogging_batch), batches of security.logging.batch.size (1000) over a pool of
  // security.logging.db.pool (2) connections.
  const authtrailSchema = await freshSchema(admin)
  schemas.push(authtrailSchema)
  const database = await startDatabaseWorker({
    connection: { kind: 'postgres', url: URL, password: undefined, pool: 2 },
    proc: `${authtrailSchema}.securitylogging`,
    schema: authtrailSchema,
    table: `${authtrailSchema}.securitylog`,
  })
  const outbox = createOutbox({ sink: database.sink!, logger: { info() {}, warn: console.warn, error: console.error }, maxBatch: Number(process.env.BENCH_BATCH ?? 1000), flushDelayMs: 20, concurrency: Number(process.env.BENCH_CONCURRENCY ?? 2) })
  const batchedEvents = events(EVENTS)
  let start = performance.now()
  for (const event of batchedEvents) outbox.enqueue(event)
  await outbox.flush()
  const batched = EVENTS / ((performance.now() - start) / 1000)
  await outbox.close()
  await database.close()
  if ((await count(admin, authtrailSchema)) !== EVENTS) throw new Error('authtrail path lost events')

  // The same path handed events whose XML is already built, as CALL and COPY below are: delivery only.
  const preparedSchema = await freshSchema(admin)
  schemas.push(preparedSchema)
  const prepared = events(EVENTS).map(describe)
  const preparedClient = createPostgresClient({ url: URL, poolSize: 2 })
  const preparedSink = await createPostgresProcedureSink(preparedClient, `${preparedSchema}.securitylogging`, () => preparedClient.close(), (event) => prepared[indexOf.get(event.id)!]!)
  const preparedOutbox = createOutbox({ sink: preparedSink, logger: { info() {}, warn: console.warn, error: console.error }, maxBatch: Number(process.env.BENCH_BATCH ?? 1000), flushDelayMs: 20, concurrency: Number(process.env.BENCH_CONCURRENCY ?? 2) })
  const indexOf = new Map(prepared.map((d, i) => [d.event.id, i]))
  start = performance.now()
  for (const d of prepared) preparedOutbox.enqueue(d.event)
  await preparedOutbox.flush()
  const deliveryOnly = EVENTS / ((performance.now() - start) / 1000)
  await preparedOutbox.close()

  // One awaited CALL per event, already described (only delivery is timed); a quarter of the events,
  // since it is the slow one.
  const callSchema = await freshSchema(admin)
  schemas.push(callSchema)
  const described = events(EVENTS / 4).map(describe)
  const caller = new pg.Client({ connectionString: URL })
  await caller.connect()
  start = performance.now()
  for (const e of described) await caller.query(`CALL ${callSchema}.securitylogging($1::xml, $2::xml, $3)`, [e.sessionContext, e.data, e.event.type])
  const perCall = described.length / ((performance.now() - start) / 1000)
  await caller.end()

  // COPY of the same rows, the XML already built and the columns already extracted.
  const copySchema = await freshSchema(admin)
  schemas.push(copySchema)
  const rows = events(EVENTS).map(describe).map((e) =>
    [e.event.id, new Date(e.event.time).toISOString(), e.event.type, e.event.username, e.event.ip, e.event.sessionId, e.data, e.sessionContext].map(csv).join(',') + '\n',
  )
  const copier = new pg.Client({ connectionString: URL })
  await copier.connect()
  start = performance.now()
  await pipeline(Readable.from(rows), copier.query(copyFrom(`COPY ${copySchema}.securitylog (event_id, time, type, username, ip, session_id, data, session_context) FROM STDIN WITH (FORMAT csv)`)))
  const copy = EVENTS / ((performance.now() - start) / 1000)
  await copier.end()
  // Tamper evidence: the same path with and without chaining, back to back.
  const unchained = await outboxPath(admin, schemas, false)
  const chained = await outboxPath(admin, schemas, true)
  return { batched, deliveryOnly, perCall, copy, unchained, chained }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

export async function benchPostgresDelivery(): Promise<Record<string, string | number>> {
  const admin = new pg.Client({ connectionString: URL })
  await admin.connect()
  const schemas: string[] = []
  try {
    const rounds: Array<Awaited<ReturnType<typeof round>>> = []
    // The three methods alternate within each round so that machine noise falls on all of them.
    for (let i = 0; i < ROUNDS; i++) rounds.push(await round(admin, schemas))
    const batched = median(rounds.map((r) => r.batched))
    const perCall = median(rounds.map((r) => r.perCall))
    const copy = median(rounds.map((r) => r.copy))
    const deliveryOnly = median(rounds.map((r) => r.deliveryOnly))
    return {
      'events per round': EVENTS,
      rounds: ROUNDS,
      'authtrail batched path, events/s (median)': Math.round(batched),
      'one awaited CALL per event, events/s (median)': Math.round(perCall),
      'authtrail batched delivery of prebuilt XML, events/s (median)': Math.round(deliveryOnly),
      'COPY, events/s (median)': Math.round(copy),
      'batched / COPY': Number((batched / copy).toFixed(2)),
      'batched / one CALL per event': Number((batched / perCall).toFixed(1)),
      'batched delivery of prebuilt XML / COPY': Number((deliveryOnly / copy).toFixed(2)),
      'batched delivery of prebuilt XML / one CALL per event': Number((deliveryOnly / perCall).toFixed(1)),
      'batched / COPY per round': rounds.map((r) => (r.batched / r.copy).toFixed(2)).join(' '),
      'unchained path, events/s (median)': Math.round(median(rounds.map((r) => r.unchained))),
      'chained path (tamper evidence), events/s (median)': Math.round(median(rounds.map((r) => r.chained))),
      'chained / unchained (median of per-round ratios)': Number(median(rounds.map((r) => r.chained / r.unchained)).toFixed(2)),
    }
  } finally {
    for (const schema of schemas) await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.table(await benchPostgresDelivery())
}

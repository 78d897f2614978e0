/**
 * The database thread: the driver (pg, mysql2 or PGlite), the logging procedure's sink and the
 * describing of events all run here, so that building XML, encoding SQL parameters and, for PGlite,
 * executing SQL never take time from the event loop that answers logins. The main thread sends
 * captured events and SQL; see database-worker.ts for its side.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { sessionLedgerTable } from '../capture/session-ledger-database.js'
import { insertLedgerRows } from '../capture/session-ledger-rows.js'
import type { LedgerAdd } from '../capture/session-ledger-rows.js'
import { createSessionSeal } from '../capture/session-seal.js'
import { cliAccessEvent } from '../review/record-access.js'
import { createDescriber } from '../describe/event-xml.js'
import type { AuditEvent, Sink } from '../types.js'
import type { DatabaseThreadInit, DatabaseThreadReady, ServerInit } from './database-worker.js'
import { createMariadbClient } from './mariadb/mariadb-client.js'
import { resolveMariadbTable } from './mariadb/mariadb-procedure.js'
import { openProcedureSink } from './open-procedure-sink.js'
import { openPgliteDatabase } from './pglite/pglite-database.js'
import { createPostgresClient } from './postgres/postgres-client.js'
import { openChainedCalls } from './postgres/postgres-chain.js'
import { keepPartitions } from './postgres/postgres-procedure.js'
import type { SqlClient } from './sql-client.js'
import { isUnavailable, redactUrl } from './sql-client.js'
import { splitName } from './procedure-sink.js'
import { ConfigError } from '../config/load-config.js'
import { toWireError } from './worker-thread.js'
import type { WorkerLog } from './worker-thread.js'

const init = workerData as DatabaseThreadInit
const log = (level: WorkerLog['log'], message: string): void => parentPort!.postMessage({ log: level, message } satisfies WorkerLog)

interface Opened {
  readonly client: SqlClient
  readonly exec: ((sql: string) => Promise<void>) | undefined
  readonly sink: Sink | undefined
  readonly table: string
  readonly stopPartitions: () => void
}

/** The sink, once open: the embedded store's socket records the CLI's AUDIT_ACCESS events through it. */
let sink: Sink | undefined
let stopServing: () => Promise<void> = async () => {}

async function open(): Promise<Opened> {
  const { connection } = init
  let client: SqlClient
  let exec: Opened['exec']
  if (connection.kind === 'embedded') {
    const db = await openPgliteDatabase(connection, () => (sink ? ({ access, account, host }) => sink!.deliver([cliAccessEvent(access, Date.now(), account, host)]) : undefined))
    stopServing = db.stopServing
    client = db.client
    exec = db.exec
  } else {
    client = connection.kind === 'postgres'
      ? createPostgresClient({ url: connection.url, password: connection.password, poolSize: connection.pool })
      : createMariadbClient({ url: connection.url, password: connection.password, poolSize: connection.pool })
  }
  try {
    // The sink never closes the client: the main thread's close() does, once the ledger has written too.
    const chained = init.chain && init.proc !== undefined && client.dialect === 'postgres'
      ? await openChainedCalls(client, init.proc, init.chain, { info: (m) => log('info', m), warn: (m) => log('warn', m) })
      : undefined
    sink = init.proc === undefined ? undefined : await openProcedureSink(client, init.proc, async () => {}, createDescriber(), chained)
    const stopPartitions = sink && client.dialect === 'postgres' ? await keepPartitions(client, init.schema, (message) => log('warn', message)) : () => {}
    const table = client.dialect === 'postgres' ? init.table : await resolveMariadbTable(client, init.table)
    return { client, exec, sink, table, stopPartitions }
  } catch (err) {
    await client.close()
    throw err
  }
}

/**
 * The thread's database: open, or (an app whose server did not answer at start) still being waited
 * for, or failed for good (a store in use, a bad configuration found on opening).
 */
type State = { readonly open: Opened } | { readonly waiting: Error } | { readonly failed: unknown }
let state: State | undefined
let retry: NodeJS.Timeout | undefined
let closed = false

/**
 * An app must start, and its logins go on, while its audit database is down (events wait in the
 * spool): opening is retried with backoff, and every call meanwhile fails as an outage. A procedure
 * still missing once the server answers is said, and waited for too, rather than dropping events.
 */
function waitForDatabase(err: unknown, attempt: number): void {
  state = { waiting: err instanceof Error ? err : new Error(String(err)) }
  const delay = Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5))
  log(attempt === 0 || !isUnavailable(err) ? 'error' : 'warn', `${(err as Error).message}; trying again in ${delay / 1000} s, events wait in the spool meanwhile`)
  retry = setTimeout(() => {
    retry = undefined
    void attemptOpen(attempt + 1)
  }, delay)
}

async function attemptOpen(attempt: number): Promise<void> {
  if (closed) return
  try {
    const db = await open()
    // At start a missing procedure is the app's to report, with the file and key; later it is waited for.
    if (attempt > 0 && init.proc !== undefined && !db.sink) {
      await db.client.close()
      throw new ConfigError(`authtrail: the procedure ${init.proc} (security.logging.proc) is not in ${db.client.description}; deploy procedures/ first`)
    }
    if (closed) return void (await db.client.close())
    state = { open: db }
    if (attempt > 0) log('info', `${db.client.description} answers again: delivering what waited in the spool`)
  } catch (err) {
    const server = init.connection.kind !== 'embedded' && init.proc !== undefined
    if (server && (attempt > 0 || (isUnavailable(err) && !(err instanceof ConfigError)))) waitForDatabase(err, attempt)
    else state = { failed: err }
  }
}

const opened = attemptOpen(0)
const seal = init.sessionKey === undefined ? undefined : createSessionSeal(Buffer.from(init.sessionKey))

/** What a call meets while the database is waited for: an outage, which the outbox and the ledger retry. */
function notYet(waiting: Error): Error {
  return Object.assign(new Error(`authtrail: the audit database is not reachable yet (${waiting.message})`), { code: 'AUTHTRAIL_WAITING' })
}

/** The guessed answer to 'ready' while the database is waited for: the names as configured. */
function waitingReady(): DatabaseThreadReady {
  const connection = init.connection as ServerInit
  const dialect = connection.kind === 'postgres' ? 'postgres' : 'mariadb'
  const { schema, name } = splitName(init.table)
  // MariaDB resolves a qualified name against the server; until it answers, it is taken as written.
  const table = dialect === 'postgres' ? init.table : schema === undefined ? `\`${name}\`` : `\`${schema}\`.\`${name}\``
  const description = redactUrl(connection.url)
  return { dialect, description, table, sink: init.proc === undefined ? undefined : `${init.proc} in ${description}`, waiting: true }
}

async function handle(op: string, payload: any): Promise<unknown> {
  await opened
  const current = state!
  if (op === 'close') return close(current)
  if ('failed' in current) throw current.failed
  if ('waiting' in current) {
    if (op === 'ready') return waitingReady()
    throw notYet(current.waiting)
  }
  const db = current.open
  switch (op) {
    case 'ready':
      return { dialect: db.client.dialect, description: db.client.description, table: db.table, sink: db.sink?.description, waiting: false } satisfies DatabaseThreadReady
    case 'query':
      return db.client.query(payload.text, payload.params)
    case 'exec':
      if (!db.exec) throw new Error(`authtrail: ${db.client.description} runs single statements only`)
      return db.exec(payload as string)
    case 'deliver':
      if (!db.sink) throw new Error('authtrail: this database thread has no logging procedure')
      return db.sink.deliver(JSON.parse(payload as string) as AuditEvent[])
    case 'ledger.insert': {
      if (!seal) throw new Error('authtrail: this database thread was started without the session key')
      const { rows, replace } = JSON.parse(payload as string) as { rows: LedgerAdd[]; replace: boolean }
      return insertLedgerRows(db.client, sessionLedgerTable(db.client.dialect, db.table), seal, rows, replace)
    }
    default:
      throw new Error(`authtrail: unknown database thread operation ${op}`)
  }
}

async function close(current: State): Promise<void> {
  closed = true
  clearTimeout(retry)
  if (!('open' in current)) return
  const db = current.open
  db.stopPartitions()
  // No CLI request may reach the sink after its final checkpoints are written.
  await stopServing()
  // The sink's close writes each chain's final checkpoint (tamper evidence) before the connections go.
  await db.sink?.close()
  await db.client.close()
}

parentPort!.on('message', ({ id, op, payload }: { id: number; op: string; payload: unknown }) => {
  handle(op, payload).then(
    (result) => parentPort!.postMessage({ id, result: result ?? null }),
    (err: unknown) => parentPort!.postMessage({ id, error: toWireError(err) }),
  )
})

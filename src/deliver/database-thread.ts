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
import type { DatabaseThreadInit, DatabaseThreadReady } from './database-worker.js'
import { createMariadbClient } from './mariadb/mariadb-client.js'
import { resolveMariadbTable } from './mariadb/mariadb-procedure.js'
import { openProcedureSink } from './open-procedure-sink.js'
import { openPgliteDatabase } from './pglite/pglite-database.js'
import { createPostgresClient } from './postgres/postgres-client.js'
import { openChainedCalls } from './postgres/postgres-chain.js'
import { keepPartitions } from './postgres/postgres-procedure.js'
import type { SqlClient } from './sql-client.js'
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

const opened = open()
const seal = init.sessionKey === undefined ? undefined : createSessionSeal(Buffer.from(init.sessionKey))
// A failed start is reported through 'ready'; it must not also surface as an unhandled rejection.
opened.catch(() => {})

async function handle(op: string, payload: any): Promise<unknown> {
  const db = await opened
  switch (op) {
    case 'ready':
      return { dialect: db.client.dialect, description: db.client.description, table: db.table, sink: db.sink?.description } satisfies DatabaseThreadReady
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
    case 'close':
      db.stopPartitions()
      // No CLI request may reach the sink after its final checkpoints are written.
      await stopServing()
      // The sink's close writes each chain's final checkpoint (tamper evidence) before the connections go.
      await db.sink?.close()
      return db.client.close()
    default:
      throw new Error(`authtrail: unknown database thread operation ${op}`)
  }
}

parentPort!.on('message', ({ id, op, payload }: { id: number; op: string; payload: unknown }) => {
  handle(op, payload).then(
    (result) => parentPort!.postMessage({ id, result: result ?? null }),
    (err: unknown) => parentPort!.postMessage({ id, error: toWireError(err) }),
  )
})

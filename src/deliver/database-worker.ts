import type { Worker } from 'node:worker_threads'
import type { LedgerAdd } from '../capture/session-ledger-rows.js'
import type { Logger } from '../logger.js'
import type { AuditEvent, Sink } from '../types.js'
import type { EmbeddedInit } from './pglite/pglite-database.js'
import type { SqlClient } from './sql-client.js'
import type { ChainSettings } from './postgres/postgres-chain.js'
import { batchJson } from './event-json.js'
import { siblingModule, startWorker, workerRpc } from './worker-thread.js'

/** A database server to connect to; the password was already read from the environment. */
export interface ServerInit {
  readonly kind: 'postgres' | 'mariadb'
  readonly url: string
  readonly password: string | undefined
  readonly pool: number
}

/** What the database thread is started with (it crosses the thread boundary: plain data only). */
export interface DatabaseThreadInit {
  readonly connection: EmbeddedInit | ServerInit
  /** The logging procedure to deliver to; without it the thread is a SQL client only (the CLI). */
  readonly proc?: string
  /** Schema of the procedure, where the partition maintenance procedure lives. */
  readonly schema: string
  /** The audit table as the properties file names it (MariaDB resolves it in the thread). */
  readonly table: string
  /** The session-id key, so that the thread seals the store ids it writes into the session ledger. */
  readonly sessionKey?: Uint8Array
  /** Tamper evidence: the sink chains every event it stores (PostgreSQL and PGlite). */
  readonly chain?: ChainSettings
}

/** The thread's answer once it is open. */
export interface DatabaseThreadReady {
  readonly dialect: SqlClient['dialect']
  readonly description: string
  /** The audit table as SQL text for this database. */
  readonly table: string
  /** The sink's description, or undefined when the database has no such procedure. */
  readonly sink: string | undefined
  /**
   * The server did not answer at start (an app only): the names are as configured, not yet checked, and
   * every call fails as an outage until the thread has connected.
   */
  readonly waiting: boolean
}

/** A database opened in its own thread, as the main thread uses it. */
export interface DatabaseWorker {
  /** SQL through the thread (the session ledger, review queries, administration). */
  readonly client: SqlClient
  readonly table: string
  /** Delivers to the procedure: events cross as captured and are described in the thread. */
  readonly sink: Sink | undefined
  /** Runs a script of several statements (embedded store only: administration and tests). */
  exec(sql: string): Promise<void>
  /** Seals and writes sessions into the session ledger in the thread; only when started with a `sessionKey`. */
  readonly insertLedgerRows: ((rows: readonly LedgerAdd[], replace: boolean) => Promise<void>) | undefined
  /** Closes the database and ends the thread. */
  close(): Promise<void>
  /** The thread now running (a new one after a restart), for health checks and tests. */
  readonly thread: Worker
}

type Rpc = ReturnType<typeof workerRpc>

/** Longest the thread may take to close its database (final checkpoints, pool shutdown). */
const CLOSE_TIMEOUT_MS = 10_000

/**
 * Opens a database in a worker thread (database-thread.ts). Throws what the thread met on opening
 * (an unreachable server, a store in use). A thread that dies later (a crash, running out of memory) is
 * started again on the next call, so delivery resumes instead of failing for the life of the process;
 * the call that found it dead fails as an outage, which the outbox retries.
 */
export async function startDatabaseWorker(init: DatabaseThreadInit, logger?: Logger): Promise<DatabaseWorker> {
  const what = init.connection.kind === 'embedded' ? `the embedded store ${init.connection.dir}` : 'the audit database'
  const launch = (): { worker: Worker; rpc: Rpc } => {
    const worker = startWorker(siblingModule(import.meta.url, 'database-thread'), init)
    return { worker, rpc: workerRpc(worker, what, (line) => logger?.[line.log](line.message.replace(/^authtrail: /, ''))) }
  }
  let current = launch()
  let ready: DatabaseThreadReady
  try {
    ready = await current.rpc.call<DatabaseThreadReady>('ready')
  } catch (err) {
    await current.worker.terminate()
    throw err
  }
  if (ready.waiting) logger?.warn(`${ready.description} does not answer; authtrail starts anyway and keeps trying: logins go on, their events wait in the spool`)

  let closing: Promise<void> | undefined
  let restarting: Promise<void> | undefined
  const restart = (): Promise<void> =>
    (restarting ??= (async () => {
      logger?.error(`${current.rpc.failed!.message.replace(/^authtrail: /, '')}; starting it again`)
      await current.worker.terminate()
      const next = launch()
      current = next
      try {
        await next.rpc.call('ready')
      } catch (err) {
        // A thread that could not open is ended, so that a later call starts another one.
        await next.worker.terminate()
        throw err
      }
    })().finally(() => (restarting = undefined)))

  const call = async <T>(op: string, payload?: unknown): Promise<T> => {
    if (closing) throw new Error(`authtrail: ${what} is closed`)
    if (restarting) await restarting
    else if (current.rpc.failed) {
      const failure = current.rpc.failed
      void restart().catch((err: Error) => logger?.error(`could not start ${what}'s thread again: ${err.message}`))
      throw failure
    }
    return current.rpc.call<T>(op, payload)
  }

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await restarting?.catch(() => {})
      let timer: NodeJS.Timeout | undefined
      try {
        // A database that hangs must not keep the app from ending: the thread is ended regardless.
        const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(() => {
          logger?.warn(`${what} did not close within ${CLOSE_TIMEOUT_MS} ms; its thread is ended`)
          resolve()
        }, CLOSE_TIMEOUT_MS)))
        if (!current.rpc.failed) await Promise.race([current.rpc.call('close'), gaveUp])
      } finally {
        clearTimeout(timer)
        await current.worker.terminate()
      }
    })())

  const client: SqlClient = {
    dialect: ready.dialect,
    description: ready.description,
    query: <Row>(text: string, params: readonly unknown[] = []) => call<Row[]>('query', { text, params }),
    close,
  }
  return {
    client,
    table: ready.table,
    sink: ready.sink === undefined ? undefined : {
      description: ready.sink,
      // As one JSON string: V8's structured clone of many small objects costs the event loop several
      // times what JSON.stringify does (measured with --cpu-prof under login load), and each event's
      // JSON is the one the spool already made.
      deliver: (batch: readonly AuditEvent[]) => call<void>('deliver', batchJson(batch)),
      // The thread is closed with the database, after the session ledger has written what it holds.
      close: async () => {},
    },
    exec: (sql) => call<void>('exec', sql),
    insertLedgerRows: init.sessionKey === undefined ? undefined : async (rows, replace) => {
      if (rows.length > 0) await call<void>('ledger.insert', JSON.stringify({ rows, replace }))
    },
    close,
    get thread() {
      return current.worker
    },
  }
}

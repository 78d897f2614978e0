import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Logger } from '../../logger.js'
import { startDatabaseWorker } from '../database-worker.js'
import type { DatabaseWorker } from '../database-worker.js'
import { acquireLock } from './store-lock.js'
import type { ChainSettings } from '../postgres/postgres-chain.js'

/** The embedded PGlite store, run in the database thread. */
export interface EmbeddedStore extends DatabaseWorker {
  readonly dir: string
}

export interface EmbeddedStoreOptions {
  readonly dir: string
  readonly schema: string
  readonly table: string
  /** Create the audit table and procedure from this SQL file. */
  readonly installFile?: string
  /** Serve queries on a unix socket (the app does; the CLI does not). */
  readonly serve: boolean
  /** The logging procedure to deliver to (the app); omitted for a SQL client only. */
  readonly proc?: string
  /** The session-id key, for the session ledger's writes (the app). */
  readonly sessionKey?: Uint8Array
  /** Tamper evidence for the sink (the app, with security.logging.chain = on). */
  readonly chain?: ChainSettings
  readonly logger?: Logger
}

/**
 * Where the query socket goes: in the store's directory (private to its owner), or, since unix socket
 * paths are limited to about 100 bytes, in a private directory made anew in the temp dir (a fixed name
 * there could be taken by another user first). The lock file says where it is.
 */
function socketPath(dir: string): { socket: string; remove(): void } {
  const inDir = path.join(dir, 'authtrail.sock')
  if (Buffer.byteLength(inDir) < 100) return { socket: inDir, remove: () => {} }
  const privateDir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-'))
  return { socket: path.join(privateDir, 'authtrail.sock'), remove: () => rmSync(privateDir, { recursive: true, force: true }) }
}

/**
 * Opens the store in `dir`: takes its lock (one process per directory), starts the database thread,
 * and, with `installFile`, creates the shipped table and procedure. Throws naming the holder when the
 * directory is in use.
 */
export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  const place = options.serve ? socketPath(options.dir) : { socket: '', remove: () => {} }
  const { socket } = place
  const locked = acquireLock(options.dir, socket)
  const release = (): void => {
    locked()
    place.remove()
  }
  let store: DatabaseWorker
  try {
    store = await startDatabaseWorker(
      {
        connection: {
          kind: 'embedded',
          dir: options.dir,
          schema: options.schema,
          table: options.table,
          ...(options.installFile !== undefined ? { installSql: readFileSync(options.installFile, 'utf8') } : {}),
          ...(options.serve ? { socket } : {}),
        },
        ...(options.proc !== undefined ? { proc: options.proc } : {}),
        ...(options.sessionKey !== undefined ? { sessionKey: options.sessionKey } : {}),
        ...(options.chain !== undefined ? { chain: options.chain } : {}),
        schema: options.schema,
        table: options.table,
      },
      options.logger,
    )
  } catch (err) {
    release()
    throw new Error(`authtrail: could not open the embedded store ${options.dir}: ${(err as Error).message}`)
  }
  let closing: Promise<void> | undefined
  const close = (): Promise<void> => (closing ??= store.close().finally(release))
  return {
    dir: options.dir,
    client: { ...store.client, close },
    table: store.table,
    sink: store.sink,
    exec: store.exec,
    insertLedgerRows: store.insertLedgerRows,
    close,
    get thread() {
      return store.thread
    },
  }
}

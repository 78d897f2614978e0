import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { SqlClient } from '../sql-client.js'
import { siblingModule, startWorker, workerRpc } from '../worker-thread.js'
import { acquireLock } from './store-lock.js'

/** What the worker is started with. */
export interface EmbeddedStoreInit {
  readonly dataDir: string
  /** Schema for the shipped objects; only read with `installSql`. */
  readonly schema: string
  /** SQL run at start (procedures/securitylogging.sql); omitted when only reading. */
  readonly installSql?: string
  readonly table: string
  /** Unix socket to serve queries on, for the CLI while this process holds the store. */
  readonly socket?: string
}

/** The embedded PGlite store, run in a worker thread. */
export interface EmbeddedStore {
  readonly dir: string
  /** Runs SQL in the worker. Closing it closes the store. */
  readonly client: SqlClient
  /** Runs a script of several statements (administration and tests). */
  exec(sql: string): Promise<void>
  close(): Promise<void>
}

export interface EmbeddedStoreOptions {
  readonly dir: string
  readonly schema: string
  readonly table: string
  /** Create the audit table and procedure from this SQL file. */
  readonly installFile?: string
  /** Serve queries on a unix socket (the app does; the CLI does not). */
  readonly serve: boolean
}

/** Unix socket paths are limited to about 100 bytes; a long data dir gets a socket in the temp dir. */
function socketPath(dir: string): string {
  const inDir = path.join(dir, 'authtrail.sock')
  if (Buffer.byteLength(inDir) < 100) return inDir
  return path.join(os.tmpdir(), `authtrail-${createHash('sha256').update(dir).digest('hex').slice(0, 16)}.sock`)
}

/**
 * Opens the store in `dir`: takes its lock (one process per directory), starts the worker, and, with
 * `installFile`, creates the shipped table and procedure. Throws naming the holder when the directory
 * is in use.
 */
export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedStore> {
  const socket = options.serve ? socketPath(options.dir) : ''
  const release = acquireLock(options.dir, socket)
  const init: EmbeddedStoreInit = {
    dataDir: options.dir,
    schema: options.schema,
    table: options.table,
    ...(options.installFile !== undefined ? { installSql: readFileSync(options.installFile, 'utf8') } : {}),
    ...(options.serve ? { socket } : {}),
  }
  const worker = startWorker(siblingModule(import.meta.url, 'pglite-worker'), init)
  const rpc = workerRpc(worker)
  try {
    await rpc.call('ready')
  } catch (err) {
    await worker.terminate()
    release()
    throw new Error(`authtrail: could not open the embedded store ${options.dir}: ${(err as Error).message}`)
  }
  let closed = false
  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    try {
      if (!rpc.failed) await rpc.call('close')
    } finally {
      await worker.terminate()
      release()
    }
  }
  return {
    dir: options.dir,
    client: {
      dialect: 'postgres',
      description: `the embedded store ${options.dir}`,
      query: <Row>(text: string, params: readonly unknown[] = []) => rpc.call<Row[]>('query', { text, params }),
      close,
    },
    exec: async (sql) => {
      await rpc.call('exec', sql)
    },
    close,
  }
}

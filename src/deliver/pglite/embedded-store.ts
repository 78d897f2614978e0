import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { DescribedEvent, Sink } from '../../types.js'
import { DeliveryError } from '../../types.js'
import type { AuditFilter, AuditRow } from '../../review/audit-query.js'
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

/** An event as it crosses to the worker: strings only, cheap to clone. */
export interface WireEvent {
  readonly id: string
  readonly type: string
  readonly sessionContext: string
  readonly data: string
}

/** The embedded PGlite store, run in a worker thread. */
export interface EmbeddedStore {
  readonly dir: string
  procedureExists(name: string): Promise<boolean>
  /** A sink calling `proc` for each event. */
  sink(proc: string): Sink
  query(filter: AuditFilter): Promise<AuditRow[]>
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
  return {
    dir: options.dir,
    procedureExists: (name) => rpc.call<boolean>('procedureExists', name),
    sink(proc) {
      return {
        description: `${proc} in the embedded store ${options.dir}`,
        async deliver(batch: readonly DescribedEvent[]) {
          const events: WireEvent[] = batch.map((e) => ({ id: e.event.id, type: e.event.type, sessionContext: e.sessionContext, data: e.data }))
          const failed = await rpc.call<Array<[string, string]>>('deliver', { proc, events })
          if (failed.length > 0) {
            throw new DeliveryError(`${failed.length} of ${events.length} events rejected by ${proc}`, new Map(failed.map(([id, message]) => [id, new Error(message)])))
          }
        },
        close: async () => {},
      }
    },
    query: (filter) => rpc.call<AuditRow[]>('query', filter),
    async close() {
      if (closed) return
      closed = true
      try {
        if (!rpc.failed) await rpc.call('close')
      } finally {
        await worker.terminate()
        release()
      }
    },
  }
}

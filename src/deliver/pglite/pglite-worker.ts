/**
 * The embedded store's thread. PGlite runs SQL on the thread that calls it, so it lives here, away from
 * the event loop that answers logins: the main thread sends SQL, the worker runs it. It also answers the
 * CLI's queries over a unix socket while the app holds the store.
 */
import { rmSync } from 'node:fs'
import net from 'node:net'
import { parentPort, workerData } from 'node:worker_threads'
import { PGlite } from '@electric-sql/pglite'
import { answerStoreRequest } from '../../review/store-requests.js'
import type { StoreRequest } from '../../review/store-requests.js'
import type { SqlClient } from '../sql-client.js'
import type { EmbeddedStoreInit } from './embedded-store.js'

const init = workerData as EmbeddedStoreInit
let db: PGlite | undefined
let server: net.Server | undefined

function database(): PGlite {
  if (!db) throw new Error('authtrail: the embedded store is not open')
  return db
}

async function open(): Promise<void> {
  db = await PGlite.create({ dataDir: init.dataDir })
  if (init.installSql !== undefined) {
    // The SQL file creates unqualified objects; search_path puts them in the procedure's schema.
    await db.exec(`CREATE SCHEMA IF NOT EXISTS ${init.schema}; SET search_path TO ${init.schema}, public;`)
    await db.exec(init.installSql)
    await db.exec('SET search_path TO DEFAULT')
  }
  if (init.socket !== undefined) server = await serve(init.socket)
}

/** The store as a client for the review module's requests. */
const reviewClient: SqlClient = {
  dialect: 'postgres',
  description: `the embedded store ${init.dataDir}`,
  query: async <Row>(text: string, params: readonly unknown[] = []) => (await database().query<Row>(text, params as unknown[])).rows,
  close: async () => {},
}

/**
 * One JSON request line in, one JSON reply line out; the requests are src/review/store-requests.ts
 * (reads, and AUDIT_ACCESS records through the logging procedure: nothing else can write).
 */
function serve(socket: string): Promise<net.Server> {
  rmSync(socket, { force: true })
  const server = net.createServer((connection) => {
    let buffered = ''
    connection.setEncoding('utf8')
    connection.on('data', (chunk: string) => {
      buffered += chunk
      const newline = buffered.indexOf('\n')
      if (newline < 0) {
        if (buffered.length > 65536) connection.destroy()
        return
      }
      const line = buffered.slice(0, newline)
      connection.removeAllListeners('data')
      void (async () => {
        try {
          const request = JSON.parse(line) as StoreRequest
          connection.end(JSON.stringify(await answerStoreRequest(reviewClient, init.table, request)) + '\n')
        } catch (err) {
          connection.end(JSON.stringify({ error: (err as Error).message }) + '\n')
        }
      })()
    })
    connection.on('error', () => connection.destroy())
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(socket, () => resolve(server))
  })
}

async function close(): Promise<void> {
  if (server) {
    await new Promise<void>((resolve) => server!.close(() => resolve()))
    if (init.socket !== undefined) rmSync(init.socket, { force: true })
  }
  await db?.close()
  db = undefined
}

const opened = open()

parentPort!.on('message', async ({ id, op, payload }: { id: number; op: string; payload: any }) => {
  try {
    await opened
    let result: unknown
    switch (op) {
      case 'ready': result = true; break
      case 'query': result = (await database().query(payload.text, payload.params)).rows; break
      case 'exec': await database().exec(payload as string); result = true; break
      case 'close': await close(); result = true; break
      default: throw new Error(`unknown operation ${op}`)
    }
    parentPort!.postMessage({ id, result })
  } catch (err) {
    parentPort!.postMessage({ id, error: { message: (err as Error).message, code: (err as { code?: string }).code } })
  }
})

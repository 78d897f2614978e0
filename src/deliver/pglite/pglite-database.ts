/**
 * PGlite on the thread that opens it: authtrail opens it in the database worker (database-thread.ts),
 * because PGlite runs SQL on the calling thread and must stay off the event loop that answers logins.
 * While an app holds the store it also answers the CLI's queries over a unix socket.
 */
import { chmodSync, rmSync } from 'node:fs'
import net from 'node:net'
import { PGlite } from '@electric-sql/pglite'
import { answerStoreRequest } from '../../review/store-requests.js'
import type { StoreRequest } from '../../review/store-requests.js'
import type { SqlClient } from '../sql-client.js'
import type { SocketAccess } from '../../review/store-requests.js'

/** The embedded store to open, as the main thread describes it. */
export interface EmbeddedInit {
  readonly kind: 'embedded'
  readonly dir: string
  /** Schema for the shipped objects; only read with `installSql`. */
  readonly schema: string
  /** SQL run at start (procedures/securitylogging.sql); omitted when only reading. */
  readonly installSql?: string
  /** The audit table, for queries through the socket. */
  readonly table: string
  /** Unix socket to serve queries on, for the CLI while this process holds the store. */
  readonly socket?: string
}

/** An open PGlite store: a client, a way to run scripts, and its closing. */
export interface PgliteDatabase {
  readonly client: SqlClient
  exec(sql: string): Promise<void>
  /** Stops answering the CLI (before the sink's last writes at close: nothing may come after them). */
  stopServing(): Promise<void>
}

/** Longest a connection to the socket may take to send its request: an idle one must not hold up shutdown. */
const REQUEST_TIMEOUT_MS = 10_000

/**
 * Opens PGlite in `init.dir` on this thread, installs the shipped SQL if asked, and serves the socket.
 * `recorder` gives the way to store the CLI's AUDIT_ACCESS events (the app's sink, once it exists).
 */
export async function openPgliteDatabase(init: EmbeddedInit, recorder: () => ((access: SocketAccess) => Promise<void>) | undefined = () => undefined): Promise<PgliteDatabase> {
  const db = await PGlite.create({ dataDir: init.dir })
  let serving: { stop(): Promise<void> } | undefined
  const stopServing = async (): Promise<void> => {
    const current = serving
    serving = undefined
    await current?.stop()
  }
  const client: SqlClient = {
    dialect: 'postgres',
    description: `the embedded store ${init.dir}`,
    query: async <Row>(text: string, params: readonly unknown[] = []) => (await db.query<Row>(text, params as unknown[])).rows,
    async close() {
      await stopServing()
      await db.close()
    },
  }
  try {
    if (init.installSql !== undefined) {
      // The SQL file creates unqualified objects; search_path puts them in the procedure's schema.
      await db.exec(`CREATE SCHEMA IF NOT EXISTS ${init.schema}; SET search_path TO ${init.schema}, public;`)
      await db.exec(init.installSql)
      await db.exec('SET search_path TO DEFAULT')
    }
    if (init.socket !== undefined) serving = await serve(init.socket, (request) => answerStoreRequest(client, init.table, request, recorder()))
  } catch (err) {
    await db.close()
    throw err
  }
  return {
    client,
    exec: async (sql) => {
      await db.exec(sql)
    },
    stopServing,
  }
}

/**
 * One JSON request line in, one JSON reply line out; the requests are src/review/store-requests.ts
 * (reads, and AUDIT_ACCESS records through the app's sink: nothing else can write). The socket is made
 * readable by its owner only (its directory is private too, see embedded-store.ts).
 */
async function serve(socket: string, answer: (request: StoreRequest) => Promise<unknown>): Promise<{ stop(): Promise<void> }> {
  rmSync(socket, { force: true })
  const connections = new Set<net.Socket>()
  const server = net.createServer((connection) => {
    connections.add(connection)
    connection.once('close', () => connections.delete(connection))
    connection.setTimeout(REQUEST_TIMEOUT_MS, () => connection.destroy())
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
      // The request is in: answering may take long (a large page), which is not the client's doing.
      connection.setTimeout(0)
      void (async () => {
        try {
          connection.end(JSON.stringify(await answer(JSON.parse(line) as StoreRequest)) + '\n')
        } catch (err) {
          connection.end(JSON.stringify({ error: (err as Error).message }) + '\n')
        }
      })()
    })
    connection.on('error', () => connection.destroy())
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socket, () => resolve())
  })
  chmodSync(socket, 0o600)
  return {
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const connection of connections) connection.destroy()
      await closed
      rmSync(socket, { force: true })
    },
  }
}

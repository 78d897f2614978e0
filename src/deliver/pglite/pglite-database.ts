/**
 * PGlite on the thread that opens it: authtrail opens it in the database worker (database-thread.ts),
 * because PGlite runs SQL on the calling thread and must stay off the event loop that answers logins.
 * While an app holds the store it also answers the CLI's queries over a unix socket.
 */
import { rmSync } from 'node:fs'
import net from 'node:net'
import { PGlite } from '@electric-sql/pglite'
import { buildAuditQuery, toAuditRow } from '../../review/audit-query.js'
import type { AuditFilter } from '../../review/audit-query.js'
import type { SqlClient } from '../sql-client.js'

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
}

/** Opens PGlite in `init.dir` on this thread, installs the shipped SQL if asked, and serves the socket. */
export async function openPgliteDatabase(init: EmbeddedInit): Promise<PgliteDatabase> {
  const db = await PGlite.create({ dataDir: init.dir })
  let server: net.Server | undefined
  try {
    if (init.installSql !== undefined) {
      // The SQL file creates unqualified objects; search_path puts them in the procedure's schema.
      await db.exec(`CREATE SCHEMA IF NOT EXISTS ${init.schema}; SET search_path TO ${init.schema}, public;`)
      await db.exec(init.installSql)
      await db.exec('SET search_path TO DEFAULT')
    }
    if (init.socket !== undefined) server = await serve(init.socket, async (filter) => {
      const { text, params } = buildAuditQuery('postgres', init.table, filter)
      return (await db.query<Record<string, unknown>>(text, params)).rows.map(toAuditRow)
    })
  } catch (err) {
    await db.close()
    throw err
  }
  return {
    client: {
      dialect: 'postgres',
      description: `the embedded store ${init.dir}`,
      query: async <Row>(text: string, params: readonly unknown[] = []) => (await db.query<Row>(text, params as unknown[])).rows,
      async close() {
        if (server) {
          await new Promise<void>((resolve) => server!.close(() => resolve()))
          rmSync(init.socket!, { force: true })
        }
        await db.close()
      },
    },
    exec: async (sql) => {
      await db.exec(sql)
    },
  }
}

/** One JSON request line in, one JSON reply line out. Only queries are served: nothing can write. */
function serve(socket: string, query: (filter: AuditFilter) => Promise<unknown[]>): Promise<net.Server> {
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
          const request = JSON.parse(line) as { op?: string; filter?: AuditFilter }
          if (request.op !== 'query') throw new Error(`unknown request ${JSON.stringify(request.op)}`)
          connection.end(JSON.stringify({ rows: await query(request.filter ?? {}) }) + '\n')
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

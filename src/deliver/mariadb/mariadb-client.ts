import mysql from 'mysql2/promise'
import type { SqlClient } from '../sql-client.js'
import { redactUrl } from '../sql-client.js'

export interface MariadbClientOptions {
  readonly url: string
  readonly password?: string | undefined
  readonly poolSize: number
}

/** A `mysql2` pool as a {@link SqlClient}; `mariadb://` URLs are read as `mysql://`. */
export function createMariadbClient(options: MariadbClientOptions): SqlClient {
  const url = new URL(options.url.replace(/^mariadb:/, 'mysql:'))
  const pool = mysql.createPool({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: options.password ?? decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined,
    connectionLimit: options.poolSize,
    // Times are written and read as UTC whatever the server's zone.
    timezone: 'Z',
    dateStrings: false,
    supportBigNumbers: true,
    bigNumberStrings: true,
  })
  return {
    dialect: 'mariadb',
    description: redactUrl(options.url),
    async query<Row>(text: string, params: readonly unknown[] = []) {
      const connection = await pool.getConnection()
      try {
        const [rows] = await connection.query(text, params as unknown[])
        connection.release()
        // A statement without rows (DELETE, UPDATE) yields its header, which carries affectedRows.
        return (Array.isArray(rows) ? rows : [rows]) as Row[]
      } catch (err) {
        // The server hangs up after ER_NET_PACKET_TOO_LARGE, but mysql2 does not mark that error fatal:
        // back in the pool, the dead connection would fail the next query with ECONNRESET, an outage.
        // A fatal error's connection is dead too, and the pool may not have dropped it yet.
        if (isPacketTooLarge(err) || (err as { fatal?: unknown }).fatal === true) connection.destroy()
        else connection.release()
        throw err
      }
    },
    close: () => pool.end(),
  }
}

/** ER_NET_PACKET_TOO_LARGE: a statement longer than the server's max_allowed_packet. */
export function isPacketTooLarge(err: unknown): boolean {
  return (err as { errno?: unknown })?.errno === 1153
}

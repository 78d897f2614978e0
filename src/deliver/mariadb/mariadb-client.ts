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
      const [rows] = await pool.query(text, params as unknown[])
      // A statement without rows (DELETE, UPDATE) yields its header, which carries affectedRows.
      return (Array.isArray(rows) ? rows : [rows]) as Row[]
    },
    close: () => pool.end(),
  }
}

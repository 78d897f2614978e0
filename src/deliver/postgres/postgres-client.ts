import pg from 'pg'
import type { SqlClient } from '../sql-client.js'
import { redactUrl } from '../sql-client.js'

export interface PostgresClientOptions {
  readonly url: string
  /** Overrides the URL's password (from the environment variable the properties file names). */
  readonly password?: string | undefined
  readonly poolSize: number
  readonly applicationName?: string
}

/** A `pg` pool as a {@link SqlClient}. Idle connections are closed so an idle app holds few. */
export function createPostgresClient(options: PostgresClientOptions): SqlClient {
  const pool = new pg.Pool({
    connectionString: options.url,
    ...(options.password !== undefined ? { password: options.password } : {}),
    max: options.poolSize,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    application_name: options.applicationName ?? 'authtrail',
  })
  // A broken idle connection must not crash the app; the next query reports the outage instead.
  pool.on('error', () => {})
  return {
    dialect: 'postgres',
    description: redactUrl(options.url),
    async query<Row>(text: string, params: readonly unknown[] = []) {
      const result = await pool.query(text, params as unknown[])
      return result.rows as Row[]
    },
    close: () => pool.end(),
  }
}

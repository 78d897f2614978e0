import { sessionLedgerTable } from '../capture/session-ledger-database.js'
import type { SqlClient } from '../deliver/sql-client.js'
import { checkTableName, sqlParams } from './audit-where.js'

/** An authenticated session the ledger watches. Never its ids: the sealed store id is a credential. */
export interface ActiveSession {
  readonly username: string
  readonly ip: string
  readonly userAgent: string
  /** ISO 8601. */
  readonly loginTime: string
  /** Idle expiry as last known (a session in use is extended when the sweep finds it due). */
  readonly expiresAt: string
  readonly absoluteExpiresAt: string | undefined
}

/**
 * Sessions in the session ledger next to the audit table (securitylog_session), most recent login
 * first; those already found ended and waiting to be reported are left out.
 */
export async function activeSessions(client: SqlClient, auditTable: string, options: { user?: string; limit?: number } = {}): Promise<ActiveSession[]> {
  checkTableName(client.dialect, auditTable)
  const pg = client.dialect === 'postgres'
  const p = sqlParams(client.dialect)
  // Epoch milliseconds, as the ledger writes them, so that no driver's time-zone handling is involved.
  const ms = (column: string) => (pg ? `(extract(epoch FROM ${column}) * 1000)::float8` : `UNIX_TIMESTAMP(${column}) * 1000`)
  const where = ['ended IS NULL', ...(options.user !== undefined ? [`username = ${p(options.user)}`] : [])]
  const rows = await client.query<Record<string, unknown>>(
    `SELECT username, ip, user_agent, ${ms('login_time')} AS login_ms, ${ms('expires_at')} AS expires_ms, ${ms('absolute_expires_at')} AS absolute_ms ` +
      `FROM ${sessionLedgerTable(client.dialect, auditTable)} WHERE ${where.join(' AND ')} ORDER BY login_time DESC LIMIT ${p(Math.min(Math.max(1, options.limit ?? 500), 5000))}`,
    p.values,
  )
  const iso = (value: unknown) => new Date(Number(value)).toISOString()
  return rows.map((row) => ({
    username: String(row.username),
    ip: String(row.ip),
    userAgent: String(row.user_agent),
    loginTime: iso(row.login_ms),
    expiresAt: iso(row.expires_ms),
    absoluteExpiresAt: row.absolute_ms === null ? undefined : iso(row.absolute_ms),
  }))
}

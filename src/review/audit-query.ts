import type { SqlClient } from '../deliver/sql-client.js'
import type { AuditEventType } from '../types.js'

/** Filters shared by the CLI and the admin page. All are optional; rows come newest first. */
export interface AuditFilter {
  readonly types?: readonly AuditEventType[]
  readonly user?: string
  /** ISO 8601 instant; rows at or after it. */
  readonly since?: string
  /** ISO 8601 instant; rows before it. */
  readonly until?: string
  /** @defaultValue 100 */
  readonly limit?: number
}

/** One audit row as the CLI prints it in `--format json`. */
export interface AuditRow {
  readonly id: number
  /** ISO 8601, UTC. */
  readonly time: string
  readonly type: string
  readonly username: string
  readonly ip: string
  readonly session_id: string
  /** The `<data>` XML exactly as passed to the procedure. */
  readonly data: string
  readonly session_context: string
}

export const MAX_LIMIT = 10_000

/** A validated schema-qualified name, safe to put in SQL text (see config/load-config.ts). */
const QUALIFIED_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}\.[A-Za-z_][A-Za-z0-9_]{0,62}$/
/** A MariaDB name already resolved and quoted by resolveMariadbTable. */
const QUOTED_MARIADB_NAME = /^(`[A-Za-z_][A-Za-z0-9_]{0,63}`\.)?`[A-Za-z_][A-Za-z0-9_]{0,63}`$/

/**
 * Builds the parameterised SELECT for a filter, newest first. For PostgreSQL `table` is the
 * schema-qualified name of the config; for MariaDB the quoted name resolveMariadbTable returned.
 */
export function buildAuditQuery(dialect: SqlClient['dialect'], table: string, filter: AuditFilter): { text: string; params: unknown[] } {
  const valid = dialect === 'postgres' ? QUALIFIED_NAME.test(table) : QUOTED_MARIADB_NAME.test(table)
  if (!valid) throw new Error(`authtrail: invalid audit table name ${JSON.stringify(table)}`)
  const where: string[] = []
  const params: unknown[] = []
  const placeholder = (value: unknown): string => {
    params.push(value)
    return dialect === 'postgres' ? `$${params.length}` : '?'
  }
  if (filter.types && filter.types.length > 0) {
    where.push(dialect === 'postgres' ? `type = ANY(${placeholder([...filter.types])}::text[])` : `type IN (${filter.types.map((t) => placeholder(t)).join(', ')})`)
  }
  if (filter.user !== undefined) where.push(`username = ${placeholder(filter.user)}`)
  const time = (iso: string) => (dialect === 'postgres' ? `${placeholder(iso)}::timestamptz` : placeholder(new Date(iso)))
  if (filter.since !== undefined) where.push(`time >= ${time(filter.since)}`)
  if (filter.until !== undefined) where.push(`time < ${time(filter.until)}`)
  const limit = Math.min(Math.max(1, Math.trunc(filter.limit ?? 100)), MAX_LIMIT)
  const columns = dialect === 'postgres'
    ? 'id::text AS id, time, type, username, ip, session_id, data::text AS data, session_context::text AS session_context'
    : 'id, time, type, username, ip, session_id, data, session_context'
  const text =
    `SELECT ${columns} FROM ${table}` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY time DESC, id DESC LIMIT ${placeholder(limit)}`
  return { text, params }
}

/** Reads audit rows through any client. */
export async function queryAudit(client: SqlClient, table: string, filter: AuditFilter): Promise<AuditRow[]> {
  const { text, params } = buildAuditQuery(client.dialect, table, filter)
  return (await client.query<Record<string, unknown>>(text, params)).map(toAuditRow)
}

/** Normalises a database row (Date or string times, bigint ids as text) to an {@link AuditRow}. */
export function toAuditRow(row: Record<string, unknown>): AuditRow {
  const time = row.time instanceof Date ? row.time : new Date(String(row.time))
  return {
    id: Number(row.id),
    time: time.toISOString(),
    type: String(row.type),
    username: String(row.username ?? ''),
    ip: String(row.ip ?? ''),
    session_id: String(row.session_id ?? ''),
    data: String(row.data),
    session_context: String(row.session_context),
  }
}

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

/** Builds the parameterised SELECT for a filter. `table` must be schema-qualified, as the config gives it. */
export function buildAuditQuery(table: string, filter: AuditFilter): { text: string; params: unknown[] } {
  if (!QUALIFIED_NAME.test(table)) throw new Error(`authtrail: invalid audit table name ${JSON.stringify(table)}`)
  const where: string[] = []
  const params: unknown[] = []
  const add = (clause: (placeholder: string) => string, value: unknown): void => {
    params.push(value)
    where.push(clause(`$${params.length}`))
  }
  if (filter.types && filter.types.length > 0) add((p) => `type = ANY(${p}::text[])`, [...filter.types])
  if (filter.user !== undefined) add((p) => `username = ${p}`, filter.user)
  if (filter.since !== undefined) add((p) => `time >= ${p}::timestamptz`, filter.since)
  if (filter.until !== undefined) add((p) => `time < ${p}::timestamptz`, filter.until)
  const limit = Math.min(Math.max(1, Math.trunc(filter.limit ?? 100)), MAX_LIMIT)
  params.push(limit)
  const text =
    `SELECT id::text AS id, time, type, username, ip, session_id, data::text AS data, session_context::text AS session_context FROM ${table}` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY time DESC, id DESC LIMIT $${params.length}`
  return { text, params }
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

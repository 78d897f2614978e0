import type { SqlClient } from '../deliver/sql-client.js'
import { encodeCursor, MAX_LIMIT } from './audit-filter.js'
import type { AuditCursor, AuditFilter } from './audit-filter.js'
import { auditConditions, checkTableName, sqlParams } from './audit-where.js'

export type { AuditCursor, AuditFilter } from './audit-filter.js'
export { MAX_LIMIT } from './audit-filter.js'

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

/** One page of rows, newest first, with the opaque positions of the pages around it. */
export interface AuditPage {
  readonly rows: AuditRow[]
  /** Cursor for `before`: there are older rows. */
  readonly older: string | undefined
  /** Cursor for `after`: the page did not start at the newest row. */
  readonly newer: string | undefined
}

/**
 * Builds the parameterised SELECT for a filter, newest first (oldest first with `after`, which
 * {@link queryAuditPage} turns round). For PostgreSQL `table` is the schema-qualified name of the
 * config; for MariaDB the quoted name resolveMariadbTable returned. `afterId` reads rows in insertion
 * order instead, for following new events (`authtrail tail`). One extra row may be asked for with
 * `extra`, to know whether another page follows.
 */
export function buildAuditQuery(dialect: SqlClient['dialect'], table: string, filter: AuditFilter, options: { extra?: number; afterId?: string } = {}): { text: string; params: unknown[] } {
  checkTableName(dialect, table)
  const p = sqlParams(dialect)
  const where = auditConditions(dialect, table, filter, p)
  if (options.afterId !== undefined) where.push(`id > ${dialect === 'postgres' ? `${p(options.afterId)}::bigint` : p(options.afterId)}`)
  const limit = Math.min(Math.max(1, Math.trunc(filter.limit ?? 100)), MAX_LIMIT) + (options.extra ?? 0)
  // The exact time travels in the cursor: timestamptz keeps microseconds, which an ISO string in
  // milliseconds would round, skipping or repeating rows at a page boundary.
  const columns = dialect === 'postgres'
    ? 'id::text AS id, time, to_char(time AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') AS cursor_time, type, username, ip, session_id, data::text AS data, session_context::text AS session_context'
    : 'id, time, type, username, ip, session_id, data, session_context'
  // Qualified: a bare "id" in ORDER BY would be the text output column, sorting "9" after "10".
  const order = options.afterId !== undefined ? 'a.id ASC' : filter.after ? 'a.time ASC, a.id ASC' : 'a.time DESC, a.id DESC'
  const text =
    `SELECT ${columns} FROM ${table} AS a` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY ${order} LIMIT ${p(limit)}`
  return { text, params: p.values }
}

/** Reads audit rows through any client, newest first. */
export async function queryAudit(client: SqlClient, table: string, filter: AuditFilter): Promise<AuditRow[]> {
  return (await queryAuditPage(client, table, filter)).rows
}

function cursorOf(row: Record<string, unknown>): AuditCursor {
  const time = typeof row.cursor_time === 'string' ? row.cursor_time : toAuditRow(row).time
  return { time, id: String(row.id) }
}

/**
 * One page of a filter with keyset pagination: `(time, id)` bounds on the time index, never OFFSET,
 * so the millionth row costs what the first does. Rows come newest first in either direction.
 */
export async function queryAuditPage(client: SqlClient, table: string, filter: AuditFilter): Promise<AuditPage> {
  const limit = Math.min(Math.max(1, Math.trunc(filter.limit ?? 100)), MAX_LIMIT)
  const { text, params } = buildAuditQuery(client.dialect, table, filter, { extra: 1 })
  const raw = await client.query<Record<string, unknown>>(text, params)
  const more = raw.length > limit
  const page = raw.slice(0, limit)
  if (filter.after) page.reverse()
  const first = page[0]
  const last = page[page.length - 1]
  const older = last && (filter.after ? true : more) ? encodeCursor(cursorOf(last)) : undefined
  const newer = first && (filter.after ? more : filter.before !== undefined) ? encodeCursor(cursorOf(first)) : undefined
  return { rows: page.map(toAuditRow), older, newer }
}

/**
 * Every row of a filter, newest first, one keyset page at a time: an export of millions of rows never
 * holds more than a page in memory. The filter's own limit and cursors are ignored.
 */
export async function* eachAuditRow(client: SqlClient, table: string, filter: AuditFilter, pageSize = 1000): AsyncGenerator<AuditRow> {
  const { before: _before, after: _after, ...scope } = filter
  let before: AuditCursor | undefined
  for (;;) {
    const { text, params } = buildAuditQuery(client.dialect, table, { ...scope, limit: pageSize, ...(before ? { before } : {}) })
    const raw = await client.query<Record<string, unknown>>(text, params)
    for (const row of raw) yield toAuditRow(row)
    if (raw.length < pageSize) return
    before = cursorOf(raw[raw.length - 1]!)
  }
}

/** Rows inserted after `afterId`, oldest first, for following the trail live. */
export async function queryAuditInserted(client: SqlClient, table: string, filter: AuditFilter, afterId: string): Promise<AuditRow[]> {
  const { text, params } = buildAuditQuery(client.dialect, table, filter, { afterId })
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

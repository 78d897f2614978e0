import type { SqlClient } from '../deliver/sql-client.js'
import type { AuditFilter } from './audit-filter.js'
import { auditConditions, checkTableName, sqlParams } from './audit-where.js'

/** Counts over a window: what `authtrail stats` prints and the admin page's failures view shows. */
export interface AuditStats {
  /** The window, ISO 8601: the filter's, or the last 24 hours. */
  readonly since: string
  readonly until: string | undefined
  readonly total: number
  readonly byType: ReadonlyArray<{ readonly type: string; readonly count: number }>
  /** Failed logins (outcome failure) per user and per address, most first. */
  readonly failingUsers: ReadonlyArray<{ readonly username: string; readonly count: number; readonly last: string }>
  readonly failingIps: ReadonlyArray<{ readonly ip: string; readonly count: number; readonly last: string }>
}

/** Failed logins of one user or address within one window of a fixed length. */
export interface FailureBurst {
  readonly by: 'user' | 'ip'
  readonly value: string
  /** Start and end of the window, ISO 8601. */
  readonly from: string
  readonly to: string
  readonly count: number
  readonly last: string
}

const DAY = 86_400_000

function iso(value: unknown): string {
  return (value instanceof Date ? value : new Date(String(value))).toISOString()
}

function where(conditions: string[]): string {
  return conditions.length > 0 ? ` WHERE ${conditions.join(' AND ')}` : ''
}

/** The filter with a lower time bound: stats over the whole table would be a scan nobody asked for. */
function windowed(filter: AuditFilter, now: number): AuditFilter & { since: string } {
  return { ...filter, since: filter.since ?? new Date(now - DAY).toISOString() }
}

/**
 * Counts per type, and the users and addresses with the most failed logins, over the filter's window
 * (the last 24 hours by default). The filter's cursors and limit do not apply.
 */
export async function auditStats(client: SqlClient, table: string, filter: AuditFilter, top = 10, now = Date.now()): Promise<AuditStats> {
  checkTableName(client.dialect, table)
  const { before: _b, after: _a, limit: _l, ...rest } = filter
  const scope = windowed(rest, now)
  const count = client.dialect === 'postgres' ? 'count(*)::int' : 'COUNT(*)'
  const p = sqlParams(client.dialect)
  const byType = await client.query<{ type: string; n: number | string }>(
    `SELECT type, ${count} AS n FROM ${table}${where(auditConditions(client.dialect, table, scope, p))} GROUP BY type ORDER BY n DESC, type`,
    p.values,
  )
  const failing = async (column: 'username' | 'ip') => {
    const q = sqlParams(client.dialect)
    const conditions = auditConditions(client.dialect, table, { ...scope, outcome: 'failure' }, q)
    const limit = q(Math.min(Math.max(1, Math.trunc(top)), 1000))
    return client.query<Record<string, unknown>>(
      `SELECT ${column} AS value, ${count} AS n, MAX(time) AS last FROM ${table}${where(conditions)} GROUP BY ${column} ORDER BY n DESC, value LIMIT ${limit}`,
      q.values,
    )
  }
  const users = await failing('username')
  const ips = await failing('ip')
  return {
    since: scope.since,
    until: scope.until,
    total: byType.reduce((sum, row) => sum + Number(row.n), 0),
    byType: byType.map((row) => ({ type: row.type, count: Number(row.n) })),
    failingUsers: users.map((row) => ({ username: String(row.value), count: Number(row.n), last: iso(row.last) })),
    failingIps: ips.map((row) => ({ ip: String(row.value), count: Number(row.n), last: iso(row.last) })),
  }
}

/**
 * Bursts of failed logins: per user and per address, windows of `windowMs` (aligned to the epoch, so
 * the same burst is reported the same way by every reader) holding at least `min` failures, newest
 * window first, within the filter's time range (the last 24 hours by default).
 */
export async function failureBursts(client: SqlClient, table: string, filter: AuditFilter, windowMs: number, min: number, limit = 100, now = Date.now()): Promise<FailureBurst[]> {
  checkTableName(client.dialect, table)
  const { before: _b, after: _a, limit: _l, ...rest } = filter
  const scope = { ...windowed(rest, now), outcome: 'failure' as const }
  const pg = client.dialect === 'postgres'
  const bursts: FailureBurst[] = []
  for (const [by, column] of [['user', 'username'], ['ip', 'ip']] as const) {
    const p = sqlParams(client.dialect)
    // TIMESTAMPDIFF from a literal keeps MariaDB's session time zone out of it (DATETIME is UTC here).
    const epochMs = pg ? 'extract(epoch FROM time) * 1000' : "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', time) / 1000"
    // Placeholders in text order: MariaDB's are positional.
    const bucket = `FLOOR(${epochMs} / ${p(windowMs)})`
    const conditions = auditConditions(client.dialect, table, scope, p)
    const text =
      `SELECT ${column} AS value, ${bucket} AS bucket, ${pg ? 'count(*)::int' : 'COUNT(*)'} AS n, MAX(time) AS last FROM ${table}${where(conditions)} ` +
      `GROUP BY ${column}, bucket HAVING COUNT(*) >= ${p(min)} ORDER BY bucket DESC, n DESC LIMIT ${p(limit)}`
    for (const row of await client.query<Record<string, unknown>>(text, p.values)) {
      const start = Number(row.bucket) * windowMs
      bursts.push({ by, value: String(row.value), from: new Date(start).toISOString(), to: new Date(start + windowMs).toISOString(), count: Number(row.n), last: iso(row.last) })
    }
  }
  return bursts.sort((a, b) => b.from.localeCompare(a.from) || b.count - a.count).slice(0, limit)
}

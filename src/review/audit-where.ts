import type { SqlClient } from '../deliver/sql-client.js'
import type { AuditEventType } from '../types.js'
import { OUTCOME_TYPES } from './audit-filter.js'
import type { AuditFilter } from './audit-filter.js'

/** A validated schema-qualified name, safe to put in SQL text (see config/load-config.ts). */
const QUALIFIED_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}\.[A-Za-z_][A-Za-z0-9_]{0,62}$/
/** A MariaDB name already resolved and quoted by resolveMariadbTable. */
const QUOTED_MARIADB_NAME = /^(`[A-Za-z_][A-Za-z0-9_]{0,63}`\.)?`[A-Za-z_][A-Za-z0-9_]{0,63}`$/

/** Throws unless `table` is a name authtrail resolved itself: it goes into SQL text. */
export function checkTableName(dialect: SqlClient['dialect'], table: string): void {
  const valid = dialect === 'postgres' ? QUALIFIED_NAME.test(table) : QUOTED_MARIADB_NAME.test(table)
  if (!valid) throw new Error(`authtrail: invalid audit table name ${JSON.stringify(table)}`)
}

/** Collects parameters and hands out the dialect's placeholders in order. */
export interface SqlParams {
  readonly values: unknown[]
  (value: unknown): string
}

/** A fresh parameter list for one statement in `dialect`. */
export function sqlParams(dialect: SqlClient['dialect']): SqlParams {
  const values: unknown[] = []
  const placeholder = (value: unknown): string => {
    values.push(value)
    return dialect === 'postgres' ? `$${values.length}` : '?'
  }
  return Object.assign(placeholder, { values })
}

/** The types a filter allows: its own, narrowed by its outcome; undefined for any. */
export function effectiveTypes(filter: AuditFilter): readonly AuditEventType[] | undefined {
  const outcome = filter.outcome === undefined ? undefined : OUTCOME_TYPES[filter.outcome]
  if (!filter.types || filter.types.length === 0) return outcome
  return outcome ? filter.types.filter((type) => outcome.includes(type)) : filter.types
}

/**
 * The conditions of a filter, cursors included, as SQL over the audit table's columns. Keyset bounds
 * are written as `time <= t AND (time < t OR id < i)` rather than a row comparison, so that every
 * index whose first columns are an equality and then time (user, type, IP) can range over time too.
 */
export function auditConditions(dialect: SqlClient['dialect'], table: string, filter: AuditFilter, p: SqlParams): string[] {
  const pg = dialect === 'postgres'
  const where: string[] = []
  const types = effectiveTypes(filter)
  if (types !== undefined) {
    if (types.length === 0) where.push('1 = 0')
    else if (types.length === 1) where.push(`type = ${p(types[0])}`)
    else where.push(pg ? `type = ANY(${p([...types])}::text[])` : `type IN (${types.map((t) => p(t)).join(', ')})`)
  }
  if (filter.user !== undefined) where.push(`username = ${p(filter.user)}`)
  if (filter.ip !== undefined) where.push(`ip = ${p(filter.ip)}`)
  if (filter.network !== undefined) where.push(pg ? postgresNetwork(table, filter, p) : mariadbNetwork(filter, p))
  const time = (iso: string): string => (pg ? `${p(iso)}::timestamptz` : p(new Date(iso)))
  if (filter.since !== undefined) where.push(`time >= ${time(filter.since)}`)
  if (filter.until !== undefined) where.push(`time < ${time(filter.until)}`)
  const id = (value: string): string => (pg ? `${p(value)}::bigint` : p(value))
  if (filter.before) {
    const t = time(filter.before.time)
    where.push(`time <= ${t}`, `(time < ${pg ? t : time(filter.before.time)} OR id < ${id(filter.before.id)})`)
  }
  if (filter.after) {
    const t = time(filter.after.time)
    where.push(`time >= ${t}`, `(time > ${pg ? t : time(filter.after.time)} OR id > ${id(filter.after.id)})`)
  }
  return where
}

/**
 * securitylog_inet (procedures/securitylogging.sql) reads the text column as inet, NULL for anything
 * that is not an address, so a hostile or empty stored value can never make the query fail.
 */
function postgresNetwork(table: string, filter: AuditFilter, p: SqlParams): string {
  const schema = table.slice(0, table.lastIndexOf('.'))
  return `${schema}.securitylog_inet(ip) <<= ${p(filter.network!.cidr)}::inet`
}

/**
 * MariaDB has no network type: INET6_ATON gives 4 bytes for IPv4, 16 for IPv6 and NULL for anything
 * else, and byte ranges of the same length compare like addresses. An IPv4 network also matches its
 * IPv4-mapped IPv6 form (::ffff:a.b.c.d), as PostgreSQL's securitylog_inet does.
 */
function mariadbNetwork(filter: AuditFilter, p: SqlParams): string {
  const { family, first, last } = filter.network!
  const range = (from: Buffer, to: Buffer): string => `(LENGTH(INET6_ATON(ip)) = ${from.length} AND INET6_ATON(ip) BETWEEN ${p(from)} AND ${p(to)})`
  if (family === 6) return range(first, last)
  const mapped = (bytes: Buffer) => Buffer.concat([Buffer.alloc(10), Buffer.from([0xff, 0xff]), bytes])
  return `(${range(first, last)} OR ${range(mapped(first), mapped(last))})`
}

import type { SqlClient } from './sql-client.js'
import { isUnavailable } from './sql-client.js'

/**
 * A table of authtrail's beside the audit table: the same schema (PostgreSQL, `dbo.securitylog` →
 * `dbo.securitylog_chain`) or database (MariaDB, whose names come quoted from resolveMariadbTable).
 */
export function siblingTable(dialect: SqlClient['dialect'], auditTable: string, name: string): string {
  if (dialect === 'postgres') {
    const dot = auditTable.lastIndexOf('.')
    return dot < 0 ? name : `${auditTable.slice(0, dot)}.${name}`
  }
  const dot = auditTable.lastIndexOf('`.`')
  return dot < 0 ? `\`${name}\`` : `${auditTable.slice(0, dot + 1)}.\`${name}\``
}

/**
 * Whether the database has that table (an older deployment of procedures/ may not). A database that
 * cannot be asked (down at the app's start) is taken to have it, as the shipped SQL creates it: its
 * writes then wait for the database like everything else, instead of the feature falling back to this
 * process's memory for the life of the process.
 */
export async function hasTable(client: SqlClient, table: string, column: string): Promise<boolean> {
  try {
    await client.query(`SELECT ${column} FROM ${table} WHERE 1 = 0`)
    return true
  } catch (err) {
    const { code, errno, sqlState } = err as { code?: unknown; errno?: unknown; sqlState?: unknown }
    // PostgreSQL's undefined_table / undefined_column; MariaDB's ER_NO_SUCH_TABLE / ER_BAD_FIELD_ERROR.
    if (code === '42P01' || code === '42703' || errno === 1146 || errno === 1054 || sqlState === '42S02' || sqlState === '42S22') return false
    return isUnavailable(err)
  }
}

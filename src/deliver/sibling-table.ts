import type { SqlClient } from './sql-client.js'

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

/** Whether the database has that table (an older deployment of procedures/ may not). */
export async function hasTable(client: SqlClient, table: string, column: string): Promise<boolean> {
  try {
    await client.query(`SELECT ${column} FROM ${table} WHERE 1 = 0`)
    return true
  } catch {
    return false
  }
}

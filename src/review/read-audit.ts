import { existsSync } from 'node:fs'
import path from 'node:path'
import type { AuthtrailConfig } from '../config/load-config.js'
import { auditTable, openDatabase } from '../deliver/open-database.js'
import { queryThroughSocket } from '../deliver/pglite/socket-client.js'
import { readLockHolder } from '../deliver/pglite/store-lock.js'
import type { SqlClient } from '../deliver/sql-client.js'
import { queryAudit } from './audit-query.js'
import type { AuditFilter, AuditRow } from './audit-query.js'

/**
 * Opens the database of a properties file for the CLI, runs `work`, and closes it. For the embedded
 * store it first makes sure no running app holds the directory (PGlite allows one process).
 */
export async function withDatabase<T>(config: AuthtrailConfig, env: Readonly<Record<string, string | undefined>>, work: (client: SqlClient) => Promise<T>): Promise<T> {
  if (config.db.kind === 'embedded') {
    const dir = config.embeddedDir
    const holder = readLockHolder(dir)
    if (holder) throw new Error(`authtrail: the embedded store ${dir} is in use by process ${holder.pid} (since ${holder.since}); stop it first`)
    if (!existsSync(path.join(dir, 'PG_VERSION'))) {
      throw new Error(`authtrail: there is no embedded store in ${dir} (from ${config.file}, key security.logging.embedded.dir); it is created when the app first starts with security.logging.proc set`)
    }
  }
  const client = await openDatabase(config, { env, asApp: false })
  try {
    return await work(client)
  } catch (err) {
    const message = (err as Error).message
    if (/does not exist|doesn't exist/.test(message)) throw new Error(`authtrail: ${config.file}: key "security.logging.table" = ${JSON.stringify(config.table)}: ${message} in ${client.description}`)
    throw err
  } finally {
    await client.close()
  }
}

/**
 * Reads audit rows from the database a properties file names. When an app holds the embedded store,
 * the rows come through that app's query socket instead of opening the directory.
 */
export async function readAuditRows(config: AuthtrailConfig, filter: AuditFilter, env: Readonly<Record<string, string | undefined>> = process.env): Promise<AuditRow[]> {
  const holder = config.db.kind === 'embedded' ? readLockHolder(config.embeddedDir) : undefined
  if (holder) {
    if (holder.socket === '') throw new Error(`authtrail: the embedded store ${config.embeddedDir} is in use by process ${holder.pid} (since ${holder.since}), which answers no queries; try again when it has finished`)
    try {
      return await queryThroughSocket(holder.socket, filter)
    } catch (err) {
      throw new Error(`authtrail: the embedded store ${config.embeddedDir} is in use by process ${holder.pid} (since ${holder.since}) and its query socket ${holder.socket} failed: ${(err as Error).message}`)
    }
  }
  return withDatabase(config, env, async (client) => queryAudit(client, await auditTable(client, config), filter))
}

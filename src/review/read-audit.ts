import { existsSync } from 'node:fs'
import path from 'node:path'
import type { AuthtrailConfig } from '../config/load-config.js'
import { openEmbeddedStore } from '../deliver/pglite/embedded-store.js'
import { queryThroughSocket } from '../deliver/pglite/socket-client.js'
import { readLockHolder } from '../deliver/pglite/store-lock.js'
import type { AuditFilter, AuditRow } from './audit-query.js'

/**
 * Reads audit rows from the store a properties file names. PGlite allows one process per directory, so
 * when an app holds the embedded store the rows come through that app's query socket; otherwise the
 * directory is opened (and locked) just for the read.
 */
export async function readAuditRows(config: AuthtrailConfig, filter: AuditFilter): Promise<AuditRow[]> {
  const dir = config.embeddedDir
  const holder = readLockHolder(dir)
  if (holder) {
    if (holder.socket === '') throw new Error(`authtrail: the embedded store ${dir} is in use by process ${holder.pid} (since ${holder.since}), which answers no queries; try again when it has finished`)
    try {
      return await queryThroughSocket(holder.socket, filter)
    } catch (err) {
      throw new Error(`authtrail: the embedded store ${dir} is in use by process ${holder.pid} (since ${holder.since}) and its query socket ${holder.socket} failed: ${(err as Error).message}`)
    }
  }
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    throw new Error(`authtrail: there is no embedded store in ${dir} (from ${config.file}, key security.logging.embedded.dir); it is created when the app first starts with security.logging.proc set`)
  }
  const store = await openEmbeddedStore({ dir, schema: config.schema, table: config.table, serve: false })
  try {
    return await store.query(filter)
  } catch (err) {
    const message = (err as Error).message
    if (/does not exist/.test(message)) throw new Error(`authtrail: ${config.file}: key "security.logging.table" = ${JSON.stringify(config.table)}: ${message} in the embedded store ${dir}`)
    throw err
  } finally {
    await store.close()
  }
}

import { existsSync } from 'node:fs'
import path from 'node:path'
import type { AuthtrailConfig } from '../config/load-config.js'
import { auditTable, openDatabase } from '../deliver/open-database.js'
import { askThroughSocket } from '../deliver/pglite/socket-client.js'
import { readLockHolder } from '../deliver/pglite/store-lock.js'
import type { LockHolder } from '../deliver/pglite/store-lock.js'
import type { SqlClient } from '../deliver/sql-client.js'
import type { AuditEvent } from '../types.js'
import type { AuditFilter } from './audit-filter.js'
import { queryAuditInserted, queryAuditPage } from './audit-query.js'
import type { AuditPage, AuditRow } from './audit-query.js'
import { auditStats } from './audit-stats.js'
import type { AuditStats } from './audit-stats.js'
import { recordThroughProcedure } from './record-access.js'
import type { StoreRequest } from './store-requests.js'

type Env = Readonly<Record<string, string | undefined>>

/** The audit trail as the CLI reads it: directly, or through the app that holds the embedded store. */
export interface ReviewSource {
  readonly description: string
  page(filter: AuditFilter): Promise<AuditPage>
  /** Rows inserted after a row id, oldest first (for `tail`). */
  inserted(filter: AuditFilter, afterId: string): Promise<AuditRow[]>
  stats(filter: AuditFilter, top?: number): Promise<AuditStats>
  /** Records an AUDIT_ACCESS event by calling the configured stored procedure. */
  record(event: AuditEvent): Promise<void>
  close(): Promise<void>
}

/** A missing table or procedure, said with the key to fix rather than the driver's words alone. */
function explained(config: AuthtrailConfig, client: SqlClient, err: unknown): Error {
  const message = (err as Error).message
  if (/does not exist|doesn't exist/.test(message) && !/securitylog_inet/.test(message)) {
    return new Error(`authtrail: ${config.file}: key "security.logging.table" = ${JSON.stringify(config.table)}: ${message} in ${client.description}`)
  }
  if (/securitylog_inet/.test(message)) return new Error(`authtrail: ${client.description} has no securitylog_inet, which network filters need; deploy procedures/securitylogging.sql again to add it (${message})`)
  return err as Error
}

function checkEmbedded(config: AuthtrailConfig): void {
  if (config.db.kind !== 'embedded') return
  const dir = config.embeddedDir
  const holder = readLockHolder(dir)
  if (holder) throw new Error(`authtrail: the embedded store ${dir} is in use by process ${holder.pid} (since ${holder.since}); stop it first`)
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    throw new Error(`authtrail: there is no embedded store in ${dir} (from ${config.file}, key security.logging.embedded.dir); it is created when the app first starts with security.logging.proc set`)
  }
}

/**
 * Opens the database of a properties file for the CLI, runs `work`, and closes it. For the embedded
 * store it first makes sure no running app holds the directory (PGlite allows one process).
 */
export async function withDatabase<T>(config: AuthtrailConfig, env: Env, work: (client: SqlClient) => Promise<T>): Promise<T> {
  checkEmbedded(config)
  const client = await openDatabase(config, { env, asApp: false })
  try {
    return await work(client)
  } catch (err) {
    throw explained(config, client, err)
  } finally {
    await client.close()
  }
}

function throughSocket(config: AuthtrailConfig, holder: LockHolder): ReviewSource {
  const where = `the embedded store ${config.embeddedDir}, in use by process ${holder.pid} (since ${holder.since})`
  if (holder.socket === '') throw new Error(`authtrail: ${where} answers no queries; try again when it has finished`)
  const ask = async <Reply>(request: StoreRequest): Promise<Reply> => {
    try {
      return await askThroughSocket<Reply>(holder.socket, request)
    } catch (err) {
      throw new Error(`authtrail: ${where}: its query socket ${holder.socket} failed: ${(err as Error).message}`)
    }
  }
  return {
    description: where,
    page: async (filter) => (await ask<{ page: AuditPage }>({ op: 'page', filter })).page,
    inserted: async (filter, afterId) => (await ask<{ rows: AuditRow[] }>({ op: 'inserted', filter, afterId })).rows,
    stats: async (filter, top) => (await ask<{ stats: AuditStats }>({ op: 'stats', filter, ...(top !== undefined ? { top } : {}) })).stats,
    record: async (event) => {
      // What was read, and by whom: the app makes the event itself (its own id and time).
      const { action, filter, rows } = event.access!
      await ask({ op: 'record', access: { action, filter, rows }, account: event.username, host: event.host })
    },
    close: async () => {},
  }
}

/**
 * Opens the audit trail a properties file names, for reading. When an app holds the embedded store, the
 * rows come through that app's query socket instead of opening the directory.
 */
export async function openReviewSource(config: AuthtrailConfig, env: Env = process.env): Promise<ReviewSource> {
  const holder = config.db.kind === 'embedded' ? readLockHolder(config.embeddedDir) : undefined
  if (holder) return throughSocket(config, holder)
  checkEmbedded(config)
  const client = await openDatabase(config, { env, asApp: false })
  let table: string
  try {
    table = await auditTable(client, config)
  } catch (err) {
    await client.close()
    throw explained(config, client, err)
  }
  const guarded = <A extends unknown[], R>(work: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    try {
      return await work(...args)
    } catch (err) {
      throw explained(config, client, err)
    }
  }
  return {
    description: client.description,
    page: guarded((filter) => queryAuditPage(client, table, filter)),
    inserted: guarded((filter, afterId) => queryAuditInserted(client, table, filter, afterId)),
    stats: guarded((filter, top) => auditStats(client, table, filter, top)),
    record: async (event) => {
      await recordThroughProcedure(client, config, env, event)
    },
    close: () => client.close(),
  }
}

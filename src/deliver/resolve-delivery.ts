import type { Sink } from '../types.js'
import type { AuthtrailConfig } from '../config/load-config.js'
import { ConfigError, CONFIG_KEYS } from '../config/load-config.js'
import type { Logger } from '../logger.js'
import { queryAudit } from '../review/audit-query.js'
import type { AuditFilter, AuditRow } from '../review/audit-query.js'
import { openDatabaseWorker } from './open-database.js'
import { resolveChainSettings } from './postgres/postgres-chain.js'
import { loadScriptSink } from './script/script-sink.js'
import type { SqlClient } from './sql-client.js'
import type { DatabaseWorker } from './database-worker.js'

/** Where events go, how to read them back, and how to let go of it all. */
export interface Delivery {
  readonly sink: Sink
  /** Reads the audit table; undefined for a script procedure. */
  readonly read: ((filter: AuditFilter) => Promise<AuditRow[]>) | undefined
  /** The database of a stored procedure, for authtrail's own tables (session ledger, review queries); undefined for a script. */
  readonly database: { readonly client: SqlClient; readonly table: string; readonly insertLedgerRows: DatabaseWorker['insertLedgerRows'] } | undefined
  close(): Promise<void>
}

/**
 * Resolves `security.logging.proc` the way Showcase did, by its suffix: `.js`/`.mjs`/`.ts` is a script in
 * `proceduresDir`, any other name a stored procedure in the configured database, which is opened in its
 * own thread (see database-thread.ts). Returns undefined when logging is off; throws a
 * {@link ConfigError} naming file, key and value when the name resolves to nothing.
 */
export async function resolveDelivery(
  config: AuthtrailConfig,
  proceduresDir: string,
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
  /** The session-id key, so that the database thread writes the session ledger. */
  sessionKey?: Uint8Array,
): Promise<Delivery | undefined> {
  switch (config.procKind) {
    case 'off':
      return undefined
    case 'script': {
      const sink = await loadScriptSink(config, proceduresDir, logger)
      return { sink, read: undefined, database: undefined, close: () => sink.close() }
    }
    case 'stored-procedure': {
      const chain = resolveChainSettings(config, env)
      const database = await openDatabaseWorker(config, { env, asApp: true, logger, ...(sessionKey !== undefined ? { sessionKey } : {}), ...(chain ? { chain } : {}) })
      if (!database.sink) {
        await database.close()
        throw new ConfigError(
          `authtrail: ${config.file}: key "${CONFIG_KEYS.proc}" = ${JSON.stringify(config.proc)} names neither a script (.js, .mjs, .ts) in ${proceduresDir} nor a procedure in ${database.client.description}` +
            (config.db.kind === 'embedded' ? ` (it has ${config.schema}.securitylogging from procedures/securitylogging.sql)` : '; deploy procedures/ first'),
        )
      }
      const { client, table, insertLedgerRows } = database
      return { sink: database.sink, read: (filter) => queryAudit(client, table, filter), database: { client, table, insertLedgerRows }, close: database.close }
    }
  }
}

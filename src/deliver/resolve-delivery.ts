import type { Sink } from '../types.js'
import type { AuthtrailConfig } from '../config/load-config.js'
import { ConfigError, CONFIG_KEYS } from '../config/load-config.js'
import type { Logger } from '../logger.js'
import { queryAudit } from '../review/audit-query.js'
import type { AuditFilter, AuditRow } from '../review/audit-query.js'
import { createMariadbProcedureSink } from './mariadb/mariadb-procedure.js'
import { auditTable, openDatabase } from './open-database.js'
import { openChainedCalls } from './postgres/postgres-chain.js'
import type { ChainedCalls } from './postgres/postgres-chain.js'
import { createPostgresProcedureSink, keepPartitions, postgresProcedureExists } from './postgres/postgres-procedure.js'
import { loadScriptSink } from './script/script-sink.js'
import type { SqlClient } from './sql-client.js'

/** Where events go, how to read them back, and how to let go of it all. */
export interface Delivery {
  readonly sink: Sink
  /** Reads the audit table; undefined for a script procedure. */
  readonly read: ((filter: AuditFilter) => Promise<AuditRow[]>) | undefined
  /** The database of a stored procedure, for authtrail's own tables (session ledger, review queries); undefined for a script. */
  readonly database: { readonly client: SqlClient; readonly table: string } | undefined
  close(): Promise<void>
}

/**
 * A sink calling the stored procedure `proc` through `client`, or undefined when the database has no such
 * procedure (for MariaDB, in neither the named database nor the connection's).
 */
export async function openProcedureSink(client: SqlClient, proc: string, close: () => Promise<void>, chained?: ChainedCalls): Promise<Sink | undefined> {
  if (client.dialect === 'mariadb') return createMariadbProcedureSink(client, proc, close)
  return (await postgresProcedureExists(client, proc)) ? createPostgresProcedureSink(client, proc, close, chained) : undefined
}

/**
 * Resolves `security.logging.proc` the way Showcase did, by its suffix: `.js`/`.mjs`/`.ts` is a script in
 * `proceduresDir`, any other name a stored procedure in the configured database. Returns undefined when
 * logging is off; throws a {@link ConfigError} naming file, key and value when the name resolves to nothing.
 */
export async function resolveDelivery(
  config: AuthtrailConfig,
  proceduresDir: string,
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
): Promise<Delivery | undefined> {
  switch (config.procKind) {
    case 'off':
      return undefined
    case 'script': {
      const sink = await loadScriptSink(config, proceduresDir, logger)
      return { sink, read: undefined, database: undefined, close: () => sink.close() }
    }
    case 'stored-procedure': {
      const client = await openDatabase(config, { env, asApp: true })
      try {
        // Closed once, by whichever of the sink and the delivery gets there first.
        let closing: Promise<void> | undefined
        const close = () => (closing ??= client.close())
        const sink = await openProcedureSink(client, config.proc, close, await openChainedCalls(client, config, env, logger))
        if (!sink) {
          throw new ConfigError(
            `authtrail: ${config.file}: key "${CONFIG_KEYS.proc}" = ${JSON.stringify(config.proc)} names neither a script (.js, .mjs, .ts) in ${proceduresDir} nor a procedure in ${client.description}` +
              (config.db.kind === 'embedded' ? ` (it has ${config.schema}.securitylogging from procedures/securitylogging.sql)` : '; deploy procedures/ first'),
          )
        }
        const stopPartitions = client.dialect === 'postgres' ? await keepPartitions(client, config.schema, logger.warn) : () => {}
        const table = await auditTable(client, config)
        return {
          sink,
          read: (filter) => queryAudit(client, table, filter),
          database: { client, table },
          async close() {
            stopPartitions()
            await close()
          },
        }
      } catch (err) {
        await client.close()
        throw err
      }
    }
  }
}

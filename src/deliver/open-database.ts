import type { AuthtrailConfig } from '../config/load-config.js'
import { ConfigError, CONFIG_KEYS } from '../config/load-config.js'
import type { Logger } from '../logger.js'
import { packageFile } from '../package-files.js'
import { startDatabaseWorker } from './database-worker.js'
import type { DatabaseWorker } from './database-worker.js'
import { resolveMariadbTable } from './mariadb/mariadb-procedure.js'
import { openEmbeddedStore } from './pglite/embedded-store.js'
import type { SqlClient } from './sql-client.js'
import type { ChainSettings } from './postgres/postgres-chain.js'

export interface OpenOptions {
  readonly env: Readonly<Record<string, string | undefined>>
  /**
   * For the app: a sink for `security.logging.proc`, and for the embedded store the shipped table and
   * procedures and a socket answering the CLI's queries.
   */
  readonly asApp: boolean
  /** The session-id key, so that the database thread writes the session ledger (the app). */
  readonly sessionKey?: Uint8Array
  /** Tamper evidence for the sink (the app, with security.logging.chain = on). */
  readonly chain?: ChainSettings
  readonly logger?: Logger
}

/**
 * Opens the database of `security.logging.db` in its own thread: the embedded store (locked to this
 * process) or a PostgreSQL/MariaDB pool. The password comes from the environment variable the file
 * names, if any.
 */
export async function openDatabaseWorker(config: AuthtrailConfig, options: OpenOptions): Promise<DatabaseWorker> {
  const db = config.db
  const proc = {
    ...(options.asApp ? { proc: config.proc } : {}),
    ...(options.sessionKey !== undefined ? { sessionKey: options.sessionKey } : {}),
    ...(options.chain !== undefined ? { chain: options.chain } : {}),
  }
  const logger = options.logger ? { logger: options.logger } : {}
  if (db.kind === 'embedded') {
    return openEmbeddedStore({
      dir: config.embeddedDir,
      schema: config.schema,
      table: config.table,
      ...(options.asApp ? { installFile: packageFile('procedures/securitylogging.sql') } : {}),
      serve: options.asApp,
      ...proc,
      ...logger,
    })
  }
  let password: string | undefined
  if (db.passwordEnv !== undefined) {
    password = options.env[db.passwordEnv]
    if (password === undefined) {
      throw new ConfigError(`authtrail: ${config.file}: key "${CONFIG_KEYS.dbPasswordEnv}" = ${JSON.stringify(db.passwordEnv)}: the environment variable ${db.passwordEnv} is not set`)
    }
  }
  return startDatabaseWorker({ connection: { kind: db.kind, url: db.url, password, pool: db.pool }, ...proc, schema: config.schema, table: config.table }, options.logger)
}

/** The database of `security.logging.db` as a SQL client, for the CLI. */
export async function openDatabase(config: AuthtrailConfig, options: OpenOptions): Promise<SqlClient> {
  return (await openDatabaseWorker(config, options)).client
}

/** The audit table as SQL text for this client: the config's qualified name, or MariaDB's resolved one. */
export async function auditTable(client: SqlClient, config: AuthtrailConfig): Promise<string> {
  return client.dialect === 'postgres' ? config.table : resolveMariadbTable(client, config.table)
}

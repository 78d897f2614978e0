import type { AuthtrailConfig } from '../config/load-config.js'
import { ConfigError, CONFIG_KEYS } from '../config/load-config.js'
import { packageFile } from '../package-files.js'
import { createMariadbClient } from './mariadb/mariadb-client.js'
import { resolveMariadbTable } from './mariadb/mariadb-procedure.js'
import { openEmbeddedStore } from './pglite/embedded-store.js'
import { createPostgresClient } from './postgres/postgres-client.js'
import type { SqlClient } from './sql-client.js'

export interface OpenOptions {
  readonly env: Readonly<Record<string, string | undefined>>
  /** For the embedded store: create the shipped table and procedures, and serve the CLI's queries. */
  readonly asApp: boolean
}

/**
 * Connects to the database of `security.logging.db`: the embedded store (locked to this process) or a
 * PostgreSQL/MariaDB pool. The password comes from the environment variable the file names, if any.
 */
export async function openDatabase(config: AuthtrailConfig, options: OpenOptions): Promise<SqlClient> {
  const db = config.db
  if (db.kind === 'embedded') {
    const store = await openEmbeddedStore({
      dir: config.embeddedDir,
      schema: config.schema,
      table: config.table,
      ...(options.asApp ? { installFile: packageFile('procedures/securitylogging.sql') } : {}),
      serve: options.asApp,
    })
    return store.client
  }
  let password: string | undefined
  if (db.passwordEnv !== undefined) {
    password = options.env[db.passwordEnv]
    if (password === undefined) {
      throw new ConfigError(`authtrail: ${config.file}: key "${CONFIG_KEYS.dbPasswordEnv}" = ${JSON.stringify(db.passwordEnv)}: the environment variable ${db.passwordEnv} is not set`)
    }
  }
  return db.kind === 'postgres'
    ? createPostgresClient({ url: db.url, password, poolSize: db.pool })
    : createMariadbClient({ url: db.url, password, poolSize: db.pool })
}

/** The audit table as SQL text for this client: the config's qualified name, or MariaDB's resolved one. */
export async function auditTable(client: SqlClient, config: AuthtrailConfig): Promise<string> {
  return client.dialect === 'postgres' ? config.table : resolveMariadbTable(client, config.table)
}

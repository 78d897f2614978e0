import type { Describer } from '../describe/event-xml.js'
import type { Sink } from '../types.js'
import { createMariadbProcedureSink } from './mariadb/mariadb-procedure.js'
import { createPostgresProcedureSink, postgresProcedureExists } from './postgres/postgres-procedure.js'
import type { SqlClient } from './sql-client.js'
import type { ChainedCalls } from './postgres/postgres-chain.js'

/**
 * A sink calling the stored procedure `proc` through `client`, or undefined when the database has no such
 * procedure (for MariaDB, in neither the named database nor the connection's).
 */
export async function openProcedureSink(client: SqlClient, proc: string, close: () => Promise<void>, describe?: Describer, chained?: ChainedCalls): Promise<Sink | undefined> {
  if (client.dialect === 'mariadb') return createMariadbProcedureSink(client, proc, close, describe)
  return (await postgresProcedureExists(client, proc)) ? createPostgresProcedureSink(client, proc, close, describe, chained) : undefined
}

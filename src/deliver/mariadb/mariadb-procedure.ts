import type { Sink } from '../../types.js'
import type { Describer } from '../../describe/event-xml.js'
import { createProcedureSink, splitName } from '../procedure-sink.js'
import type { SqlClient } from '../sql-client.js'

/**
 * Finds a routine the way a Showcase user names it: `dbo.securitylogging` is `securitylogging` in the
 * database `dbo` when that database has it, otherwise `securitylogging` in the connection's database.
 * Returns the name to call, or undefined when neither exists.
 */
export async function resolveMariadbRoutine(client: SqlClient, qualified: string): Promise<string | undefined> {
  const { schema, name } = splitName(qualified)
  const rows = await client.query<{ ROUTINE_SCHEMA: string; here: number }>(
    `SELECT ROUTINE_SCHEMA, ROUTINE_SCHEMA = DATABASE() AS here FROM information_schema.ROUTINES
      WHERE ROUTINE_TYPE = 'PROCEDURE' AND ROUTINE_NAME = ? AND (ROUTINE_SCHEMA = ? OR ROUTINE_SCHEMA = DATABASE())`,
    [name, schema ?? null],
  )
  if (schema !== undefined && rows.some((row) => row.ROUTINE_SCHEMA === schema)) return `\`${schema}\`.\`${name}\``
  return rows.some((row) => Number(row.here) === 1) ? `\`${name}\`` : undefined
}

/** Resolves a table name the same way as {@link resolveMariadbRoutine}. */
export async function resolveMariadbTable(client: SqlClient, qualified: string): Promise<string> {
  const { schema, name } = splitName(qualified)
  if (schema !== undefined) {
    const rows = await client.query(`SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [schema, name])
    if (rows.length > 0) return `\`${schema}\`.\`${name}\``
  }
  return `\`${name}\``
}

/**
 * A sink calling a MariaDB/MySQL procedure, which has no xml type: `CALL proc(?, ?, ?)` with the XML as
 * text (the shipped procedure checks it is well-formed), and `CALL proc_batch(?)` with a JSON array of
 * `{session_context, data, type}` when the database has the batch variant.
 */
export async function createMariadbProcedureSink(client: SqlClient, proc: string, close: () => Promise<void>, describe?: Describer): Promise<Sink | undefined> {
  const routine = await resolveMariadbRoutine(client, proc)
  if (routine === undefined) return undefined
  const batch = await resolveMariadbRoutine(client, `${proc}_batch`)
  return createProcedureSink(
    client,
    proc,
    {
      one: (c, e) => c.query(`CALL ${routine}(?, ?, ?)`, [e.sessionContext, e.data, e.event.type]),
      many: batch
        ? (c, events) => c.query(`CALL ${batch}(?)`, [JSON.stringify(events.map((e) => ({ session_context: e.sessionContext, data: e.data, type: e.event.type })))])
        : undefined,
    },
    close,
    describe,
  )
}

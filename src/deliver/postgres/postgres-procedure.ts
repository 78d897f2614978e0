import type { Sink } from '../../types.js'
import { createProcedureSink, splitName } from '../procedure-sink.js'
import type { SqlClient } from '../sql-client.js'

/** Whether a procedure of that (optionally schema-qualified) name exists; PostgreSQL folds unquoted names to lower case. */
export async function postgresProcedureExists(client: SqlClient, qualified: string): Promise<boolean> {
  const { schema, name } = splitName(qualified.toLowerCase())
  const rows = await client.query(
    `SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.proname = $1 AND p.prokind = 'p'
        AND (($2::text IS NULL AND n.nspname = ANY (current_schemas(false))) OR n.nspname = $2::text)`,
    [name, schema ?? null],
  )
  return rows.length > 0
}

/**
 * A sink calling `proc` (already checked to exist) on PostgreSQL or PGlite:
 * `CALL proc($1::xml, $2::xml, $3)`, and `CALL proc_batch($1::xml[], $2::xml[], $3::varchar[])` for a
 * batch when the database has it (the shipped procedures/securitylogging.sql does).
 */
export async function createPostgresProcedureSink(client: SqlClient, proc: string, close: () => Promise<void>): Promise<Sink> {
  const batch = `${proc}_batch`
  const hasBatch = await postgresProcedureExists(client, batch)
  return createProcedureSink(
    client,
    proc,
    {
      one: (c, e) => c.query(`CALL ${proc}($1::xml, $2::xml, $3)`, [e.sessionContext, e.data, e.event.type]),
      many: hasBatch
        ? (c, events) =>
            c.query(`CALL ${batch}($1::xml[], $2::xml[], $3::varchar[])`, [
              events.map((e) => e.sessionContext),
              events.map((e) => e.data),
              events.map((e) => e.event.type),
            ])
        : undefined,
    },
    close,
  )
}

/**
 * Keeps monthly partitions ahead of time by calling `<schema>.securitylog_add_partitions` at start and
 * once a day, when the schema has it. Returns a function that stops the timer.
 */
export async function keepPartitions(client: SqlClient, schema: string, warn: (message: string) => void): Promise<() => void> {
  const procedure = `${schema}.securitylog_add_partitions`
  if (!(await postgresProcedureExists(client, procedure))) return () => {}
  const run = () => client.query(`CALL ${procedure}(3)`).catch((err: Error) => warn(`${procedure} failed: ${err.message}; rows for months without a partition go to the default partition`))
  await run()
  const timer = setInterval(run, 24 * 3600_000).unref()
  return () => clearInterval(timer)
}

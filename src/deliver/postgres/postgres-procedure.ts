import type { DescribedEvent, Sink } from '../../types.js'
import type { Describer } from '../../describe/event-xml.js'
import { createProcedureSink, splitName } from '../procedure-sink.js'
import type { SqlClient } from '../sql-client.js'
import type { ChainedCalls } from './postgres-chain.js'

/**
 * Whether a procedure of that (optionally schema-qualified) name exists, with `argumentTypes` if given
 * (as format_type writes them); PostgreSQL folds unquoted names to lower case.
 */
export async function postgresProcedureExists(client: SqlClient, qualified: string, argumentTypes?: readonly string[]): Promise<boolean> {
  const { schema, name } = splitName(qualified.toLowerCase())
  const rows = await client.query<{ args: string }>(
    `SELECT array_to_string(ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t), ',') AS args
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE p.proname = $1 AND p.prokind = 'p'
        AND (($2::text IS NULL AND n.nspname = ANY (current_schemas(false))) OR n.nspname = $2::text)`,
    [name, schema ?? null],
  )
  return argumentTypes === undefined ? rows.length > 0 : rows.some((row) => row.args === argumentTypes.join(','))
}

/** The signature of `<procedure>_batch` that authtrail calls: Showcase's three arguments as arrays, then the columns. */
export const BATCH_ARGUMENTS = ['xml[]', 'xml[]', 'character varying[]', 'uuid[]', 'timestamp with time zone[]', 'text[]', 'text[]', 'text[]'] as const

/**
 * A sink calling `proc` (already checked to exist) on PostgreSQL or PGlite:
 * `CALL proc($1::xml, $2::xml, $3)`, and for a batch `CALL proc_batch(...)` with {@link BATCH_ARGUMENTS}
 * when the database has it (the shipped procedures/securitylogging.sql does). With `chained`, every call
 * goes through `proc_chained` instead (see tamper-chain.ts).
 */
export async function createPostgresProcedureSink(client: SqlClient, proc: string, close: () => Promise<void>, describe?: Describer, chained?: ChainedCalls): Promise<Sink> {
  if (chained) {
    // Tamper evidence: every call, batch or single event, goes through <proc>_chained with its links.
    const finish = async () => {
      await chained.finish(client)
      await close()
    }
    return createProcedureSink(client, proc, { one: (c, e) => chained.call(c, [e]), many: (c, events) => chained.call(c, events) }, finish, describe)
  }
  const batch = `${proc}_batch`
  const hasBatch = await postgresProcedureExists(client, batch, BATCH_ARGUMENTS)
  return createProcedureSink(
    client,
    proc,
    {
      one: (c, e) => c.query(`CALL ${proc}($1::xml, $2::xml, $3)`, [e.sessionContext, e.data, e.event.type]),
      many: hasBatch
        ? (c, events) =>
            c.query(`CALL ${batch}($1::xml[], $2::xml[], $3::varchar[], $4::uuid[], $5::timestamptz[], $6::text[], $7::text[], $8::text[])`, batchParameters(events))
        : undefined,
    },
    close,
    describe,
  )
}

/** The arguments of `<procedure>_batch` for these events, in {@link BATCH_ARGUMENTS} order: one array each. */
export function batchParameters(events: readonly DescribedEvent[]): unknown[] {
  return [
    events.map((e) => e.sessionContext),
    events.map((e) => e.data),
    events.map((e) => e.event.type),
    events.map((e) => e.event.id),
    events.map((e) => new Date(e.event.time).toISOString()),
    events.map((e) => e.event.username),
    events.map((e) => e.event.ip),
    events.map((e) => e.event.sessionId),
  ]
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

import type { AuditEventType } from '../types.js'
import type { SqlClient } from '../deliver/sql-client.js'
import { splitName } from '../deliver/procedure-sink.js'

export interface PurgeOptions {
  /** Rows strictly older than this instant go. */
  readonly before: Date
  /** Only these types (rows are then deleted in batches: partitions hold every type). */
  readonly types?: readonly AuditEventType[]
  /** Rows per DELETE, small so that no lock is held long enough to delay a login's insert. @defaultValue 5000 */
  readonly batchSize?: number
}

export interface PurgeResult {
  /** Monthly partitions dropped whole (PostgreSQL). */
  readonly droppedPartitions: readonly string[]
  /** Rows the dropped partitions held, counted just before each DROP. */
  readonly droppedRows: number
  /** Rows removed by batched DELETEs. */
  readonly deletedRows: number
}

/** Every row a purge removed, dropped with a partition or deleted, for its AUDIT_ACCESS record. */
export const purgedRows = (result: PurgeResult): number => result.droppedRows + result.deletedRows

/** The upper bound of a range partition, from pg_get_expr: FOR VALUES FROM ('…') TO ('…'). */
function partitionEnd(bound: string): Date | undefined {
  const match = /TO \('([^']+)'\)/.exec(bound)
  return match ? new Date(match[1]!) : undefined
}

/**
 * Removes audit rows older than `before`. On PostgreSQL, monthly partitions that end before it are
 * dropped whole (instant, no row locks); the rest goes in small DELETE batches, each its own
 * transaction, so inserts of new events are never blocked for long. `table` is the SQL name the config
 * resolves to.
 */
export async function purgeAudit(client: SqlClient, table: string, options: PurgeOptions): Promise<PurgeResult> {
  const batchSize = options.batchSize ?? 5000
  const dropped: string[] = []
  let droppedRows = 0
  const byType = options.types !== undefined && options.types.length > 0
  if (client.dialect === 'postgres' && !byType) {
    const { schema, name } = splitName(table)
    const partitions = await client.query<{ partition: string; bound: string }>(
      `SELECT c.oid::regclass::text AS partition, pg_get_expr(c.relpartbound, c.oid) AS bound
         FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = $1::regclass`,
      [schema ? `${schema}.${name}` : name],
    )
    for (const { partition, bound } of partitions) {
      const end = partitionEnd(bound)
      if (end && end.getTime() <= options.before.getTime()) {
        // A DROP says nothing of what it removed; only a replay of events older than the partition's
        // end could land between the count and the DROP.
        const [counted] = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${partition}`)
        droppedRows += Number(counted?.n ?? 0)
        await client.query(`DROP TABLE ${partition}`)
        dropped.push(partition)
      }
    }
  }
  let deleted = 0
  for (;;) {
    const count =
      client.dialect === 'postgres'
        ? (
            await client.query<{ n: string }>(
              `WITH gone AS (DELETE FROM ${table} WHERE (id, time) IN (SELECT id, time FROM ${table} WHERE time < $1${byType ? ' AND type = ANY($3::text[])' : ''} LIMIT $2) RETURNING 1) SELECT count(*)::text AS n FROM gone`,
              byType ? [options.before.toISOString(), batchSize, [...options.types!]] : [options.before.toISOString(), batchSize],
            )
          )[0]!.n
        : await deleteMariadbBatch(client, table, options, batchSize)
    deleted += Number(count)
    if (Number(count) < batchSize) break
  }
  return { droppedPartitions: dropped, droppedRows, deletedRows: deleted }
}

async function deleteMariadbBatch(client: SqlClient, table: string, options: PurgeOptions, batchSize: number): Promise<number> {
  const types = options.types ?? []
  const [header] = await client.query<{ affectedRows?: number }>(
    `DELETE FROM ${table} WHERE time < ?${types.length > 0 ? ` AND type IN (${types.map(() => '?').join(', ')})` : ''} ORDER BY time LIMIT ?`,
    [options.before, ...types, batchSize],
  )
  return header?.affectedRows ?? 0
}

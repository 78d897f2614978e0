import { siblingTable } from '../deliver/sibling-table.js'
import type { SqlClient } from '../deliver/sql-client.js'
import type { AttemptStore, SyncResult } from './attempt-store.js'
import { thresholdOf } from './attempt-store.js'

/** The two tables beside an audit table. */
export function attemptTables(dialect: SqlClient['dialect'], auditTable: string): { attempts: string; blocks: string } {
  return { attempts: siblingTable(dialect, auditTable, 'securitylog_attempt'), blocks: siblingTable(dialect, auditTable, 'securitylog_block') }
}

/**
 * Failed-login counts and lockouts in the audit database (securitylog_attempt, securitylog_block), shared
 * by every instance logging there. One sync is a few statements: add this instance's failures to their
 * buckets, read the watched keys' counts, lock out the keys at their threshold (the database decides who
 * creates a lockout: a key has one row, replaced only once expired, so exactly one instance records each
 * LOCKOUT), and read the lockouts other instances created. Times travel as epoch milliseconds.
 */
export function createDatabaseAttemptStore(client: SqlClient, auditTable: string): AttemptStore {
  const pg = client.dialect === 'postgres'
  const { attempts, blocks } = attemptTables(client.dialect, auditTable)
  const at = (n: number) => (pg ? `to_timestamp($${n}::float8 / 1000)` : 'FROM_UNIXTIME(? / 1000)')
  const ms = (column: string) => (pg ? `(extract(epoch FROM ${column}) * 1000)::float8` : `UNIX_TIMESTAMP(${column}) * 1000`)
  const list = (values: readonly unknown[], first: number) => (pg ? `ANY($${first}::text[])` : `(${values.map(() => '?').join(', ')})`)
  const inList = (column: string, values: readonly string[], first: number) => (pg ? `${column} = ${list(values, first)}` : `${column} IN ${list(values, first)}`)
  const listParams = (values: readonly string[]) => (pg ? [values] : values)
  let cleaned = 0

  return {
    description: `${attempts} and ${blocks} in ${client.description}`,
    async sync(request): Promise<SyncResult> {
      // Each statement commits on its own: a failure says which writes were already made (see brute-force.ts).
      const applied = { resets: false, deltas: false }
      try {
        return await steps(request, applied)
      } catch (err) {
        throw Object.assign(err as Error, { applied })
      }
    },
    close: async () => {},
  }

  async function steps(request: Parameters<AttemptStore['sync']>[0], applied: { resets: boolean; deltas: boolean }): Promise<SyncResult> {
    if (request.resets.length > 0) await client.query(`DELETE FROM ${attempts} WHERE ${inList('attempt_key', request.resets, 1)}`, listParams(request.resets))
    applied.resets = true
    if (request.deltas.length > 0) {
      if (pg) {
        await client.query(
          `INSERT INTO ${attempts} (attempt_key, bucket, count)
           SELECT k, to_timestamp(b::float8 / 1000), c FROM unnest($1::text[], $2::float8[], $3::int[]) AS d(k, b, c)
           ON CONFLICT (attempt_key, bucket) DO UPDATE SET count = ${attempts}.count + EXCLUDED.count`,
          [request.deltas.map((d) => d.key), request.deltas.map((d) => d.bucket), request.deltas.map((d) => d.count)],
        )
      } else {
        await client.query(
          `INSERT INTO ${attempts} (attempt_key, bucket, count) VALUES ${request.deltas.map(() => '(?, FROM_UNIXTIME(? / 1000), ?)').join(', ')}
           ON DUPLICATE KEY UPDATE count = count + VALUES(count)`,
          request.deltas.flatMap((d) => [d.key, d.bucket, d.count]),
        )
      }
    }
    applied.deltas = true
    const counts = new Map<string, number>()
    if (request.watch.length > 0) {
      const rows = await client.query<{ attempt_key: string; n: string | number }>(
        `SELECT attempt_key, SUM(count) AS n FROM ${attempts} WHERE ${inList('attempt_key', request.watch, 1)} AND bucket >= ${at(pg ? 2 : 0)} GROUP BY attempt_key`,
        [...listParams(request.watch), request.windowStart],
      )
      for (const row of rows) counts.set(row.attempt_key, Number(row.n))
    }
    const created: Array<{ key: string; attempts: number; until: number }> = []
    for (const [key, n] of counts) {
      const threshold = thresholdOf(key, request.thresholds)
      if (threshold === 0 || n < threshold) continue
      const until = request.now + request.blockMs
      if (await createBlock(client, blocks, key, request.now, until, n)) {
        created.push({ key, attempts: n, until })
        counts.set(key, 0)
        // A new lockout starts the count again: after it, the threshold takes as many new failures.
        // Best effort: the lockout is made, and this instance must record it whatever follows.
        await client.query(`DELETE FROM ${attempts} WHERE attempt_key = ${pg ? '$1' : '?'}`, [key]).catch(() => {})
      }
    }
    if (created.length > 0) {
      // Lockouts this call created are returned even if the rest fails: nobody else will record them.
      try {
        return { counts, created, blocks: await activeBlocks(request) }
      } catch {
        return { counts, created, blocks: [] }
      }
    }
    if (request.now - cleaned > 60_000) {
      // Buckets out of the window and lockouts expired a day ago are nobody's business; any instance sweeps them.
      cleaned = request.now
      await client.query(`DELETE FROM ${attempts} WHERE bucket < ${at(1)}`, [request.windowStart])
      await client.query(`DELETE FROM ${blocks} WHERE until < ${at(1)}`, [request.now - 86_400_000])
    }
    return { counts, created, blocks: await activeBlocks(request) }
  }

  async function activeBlocks(request: Parameters<AttemptStore['sync']>[0]): Promise<SyncResult['blocks']> {
    const active = await client.query<{ attempt_key: string; since_ms: string | number; until_ms: string | number }>(
      `SELECT attempt_key, ${ms('since')} AS since_ms, ${ms('until')} AS until_ms FROM ${blocks} WHERE until > ${at(1)} AND since >= ${at(2)}`,
      [request.now, request.blocksSince],
    )
    return active.map((row) => ({ key: row.attempt_key, since: Number(row.since_ms), until: Number(row.until_ms) }))
  }
}

/** Inserts the lockout, or replaces an expired one; true when this call did, false when one is in force. */
async function createBlock(client: SqlClient, blocks: string, key: string, since: number, until: number, attempts: number): Promise<boolean> {
  if (client.dialect === 'postgres') {
    const rows = await client.query(
      `INSERT INTO ${blocks} (attempt_key, since, until, attempts) VALUES ($1, to_timestamp($2::float8 / 1000), to_timestamp($3::float8 / 1000), $4)
       ON CONFLICT (attempt_key) DO UPDATE SET since = EXCLUDED.since, until = EXCLUDED.until, attempts = EXCLUDED.attempts
       WHERE ${blocks}.until <= EXCLUDED.since
       RETURNING attempt_key`,
      [key, since, until, attempts],
    )
    return rows.length === 1
  }
  // An expired lockout goes first; of several instances inserting at once, INSERT IGNORE lets one win
  // (ON DUPLICATE KEY UPDATE's affected rows cannot tell an insert from an unchanged row under FOUND_ROWS).
  await client.query(`DELETE FROM ${blocks} WHERE attempt_key = ? AND until <= FROM_UNIXTIME(? / 1000)`, [key, since])
  const [header] = await client.query<{ affectedRows?: number }>(
    `INSERT IGNORE INTO ${blocks} (attempt_key, since, until, attempts) VALUES (?, FROM_UNIXTIME(? / 1000), FROM_UNIXTIME(? / 1000), ?)`,
    [key, since, until, attempts],
  )
  return (header?.affectedRows ?? 0) > 0
}

import type { SqlClient } from '../deliver/sql-client.js'
import type { LedgerEntry } from './session-ledger.js'
import type { SessionSeal } from './session-seal.js'

/** A session to write into the ledger: the store's id (sealed on the way in) and what is known of it. */
export interface LedgerAdd {
  readonly sessionId: string
  readonly entry: LedgerEntry
}

/** Placeholders and time conversions of one dialect; `sql()` numbers PostgreSQL's `$n` afresh per statement. */
export function ledgerSql(dialect: SqlClient['dialect']) {
  const pg = dialect === 'postgres'
  let n = 0
  const p = (): string => (pg ? `$${++n}` : '?')
  return {
    pg,
    p,
    sql(build: () => string): string {
      n = 0
      return build()
    },
    /** A parameter given in epoch ms, as a timestamp. */
    time: (): string => (pg ? `to_timestamp(${p()}::float8 / 1000)` : `FROM_UNIXTIME(${p()} / 1000)`),
    /** A timestamp column, as epoch ms: no driver's time-zone handling is involved. */
    ms: (column: string): string => (pg ? `(extract(epoch FROM ${column}) * 1000)::float8` : `UNIX_TIMESTAMP(${column}) * 1000`),
  }
}

const UPDATED = ['sealed_id', 'username', 'user_id', 'profile', 'ip', 'user_agent', 'login_time', 'expires_at', 'absolute_expires_at', 'due_at'] as const

/**
 * Writes sessions into the ledger `table` in one statement, sealing each store id (AES-GCM costs some
 * microseconds a session, which is why authtrail runs this in the database thread). `replace` (logins)
 * overwrites a row and clears any claim; otherwise (adoptions) an existing row is kept.
 */
export async function insertLedgerRows(client: SqlClient, table: string, seal: SessionSeal, rows: readonly LedgerAdd[], replace: boolean): Promise<void> {
  if (rows.length === 0) return
  const { pg, p, sql, time } = ledgerSql(client.dialect)
  const values: unknown[] = []
  const text = sql(() => {
    const tuples = rows.map(({ sessionId, entry }) => {
      values.push(
        entry.auditSessionId, seal.seal(sessionId), entry.user.username, entry.user.userId, JSON.stringify(entry.user.profile), entry.ip, entry.userAgent,
        entry.loginTime, entry.expiresAt, entry.absoluteExpiresAt ?? null, Math.min(entry.expiresAt, entry.absoluteExpiresAt ?? Number.POSITIVE_INFINITY),
      )
      return `(${p()}, ${p()}, ${p()}, ${p()}, ${p()}, ${p()}, ${p()}, ${time()}, ${time()}, ${time()}, ${time()})`
    })
    const insert = `INSERT INTO ${table} (session_id, ${UPDATED.join(', ')}) VALUES ${tuples.join(', ')}`
    const released = 'ended = NULL, claimed_by = NULL, claimed_until = NULL'
    if (pg) return `${insert} ON CONFLICT (session_id) DO ${replace ? `UPDATE SET ${UPDATED.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, ${released}` : 'NOTHING'}`
    return replace
      ? `${insert} ON DUPLICATE KEY UPDATE ${UPDATED.map((c) => `${c} = VALUES(${c})`).join(', ')}, ${released}`
      : insert.replace(/^INSERT/, 'INSERT IGNORE')
  })
  await client.query(text, values)
}

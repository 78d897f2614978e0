import { randomUUID } from 'node:crypto'
import { hasTable, siblingTable } from '../deliver/sibling-table.js'
import type { SqlClient } from '../deliver/sql-client.js'
import type { UserProfile } from '../types.js'
import type { LedgerClaim, LedgerEntry, SessionEndKind, SessionLedger } from './session-ledger.js'
import type { SessionSeal } from './session-seal.js'

export interface DatabaseLedgerOptions {
  readonly client: SqlClient
  /** The audit table as SQL text (`schema.securitylog`, or MariaDB's quoted name): the ledger sits beside it. */
  readonly auditTable: string
  readonly hashSessionId: (sessionId: string) => string
  readonly seal: SessionSeal
}

/** The ledger table next to an audit table: same schema (PostgreSQL) or database (MariaDB). */
export function sessionLedgerTable(dialect: SqlClient['dialect'], auditTable: string): string {
  return siblingTable(dialect, auditTable, 'securitylog_session')
}

/** Whether the database has the ledger table (procedures/securitylogging.sql creates it). */
export async function hasSessionLedger(client: SqlClient, auditTable: string): Promise<boolean> {
  return hasTable(client, sessionLedgerTable(client.dialect, auditTable), 'session_id')
}

/** Ledger rows written per statement, and the longest a login's row waits for others. */
const ADD_BATCH = 500
const ADD_DELAY_MS = 20

interface PendingAdd {
  readonly sessionId: string
  readonly entry: LedgerEntry
  readonly replace: boolean
  readonly waiters: ReadonlyArray<{ resolve(): void; reject(err: unknown): void }>
}

interface Row {
  session_id: string
  sealed_id: string
  username: string
  user_id: string
  profile: string
  ip: string
  user_agent: string
  login_ms: number | string
  expires_ms: number | string
  absolute_ms: number | string | null
  ended: string | null
}

/**
 * The session ledger in the audit database, shared by every app instance that logs there. A sweep
 * claims due rows with a lease (PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent sweeps take disjoint
 * rows without waiting; MariaDB: a single-table UPDATE ... LIMIT, whose row locks serialise them), so
 * one instance at a time checks a session, and an instance killed mid-sweep only delays its rows by the
 * lease. Times travel as epoch milliseconds so that no driver's time-zone handling is involved.
 */
export function createDatabaseLedger(options: DatabaseLedgerOptions): SessionLedger {
  const { client, hashSessionId, seal } = options
  const pg = client.dialect === 'postgres'
  const table = sessionLedgerTable(client.dialect, options.auditTable)
  let n = 0
  const p = (): string => (pg ? `$${++n}` : '?')
  const sql = (build: () => string): string => {
    n = 0
    return build()
  }
  const time = (): string => (pg ? `to_timestamp(${p()}::float8 / 1000)` : `FROM_UNIXTIME(${p()} / 1000)`)
  const ms = (column: string): string => (pg ? `(extract(epoch FROM ${column}) * 1000)::float8` : `UNIX_TIMESTAMP(${column}) * 1000`)
  const columnsOf = (q: string): string =>
    `${q}session_id, ${q}sealed_id, ${q}username, ${q}user_id, ${q}profile, ${q}ip, ${q}user_agent, ${ms(`${q}login_time`)} AS login_ms, ` +
    `${ms(`${q}expires_at`)} AS expires_ms, ${ms(`${q}absolute_expires_at`)} AS absolute_ms, ${q}ended`
  const columns = columnsOf('')
  const instance = randomUUID()
  let claims = 0
  const tokens = new WeakMap<LedgerClaim, string>()

  const entryOf = (row: Row): LedgerEntry => {
    let profile: UserProfile = {}
    try {
      profile = JSON.parse(row.profile) as UserProfile
    } catch {
      // A profile edited by hand into something else: the event goes out without it.
    }
    return {
      user: { username: row.username, userId: row.user_id, profile },
      auditSessionId: row.session_id,
      ip: row.ip,
      userAgent: row.user_agent,
      loginTime: Number(row.login_ms),
      expiresAt: Number(row.expires_ms),
      absoluteExpiresAt: row.absolute_ms === null ? undefined : Number(row.absolute_ms),
    }
  }
  const affected = (rows: unknown[]): number => (pg ? rows.length : Number((rows[0] as { affectedRows?: number } | undefined)?.affectedRows ?? 0))
  const tokenOf = (claim: LedgerClaim): string => {
    const token = tokens.get(claim)
    if (token === undefined) throw new Error('authtrail: not a claim of this ledger')
    return token
  }

  const pending = new Map<string, PendingAdd>()
  let timer: NodeJS.Timeout | undefined
  const insertRows = async (rows: readonly PendingAdd[], replace: boolean): Promise<void> => {
    if (rows.length === 0) return
    const values: unknown[] = []
    const text = sql(() => {
      const tuples = rows.map(({ sessionId, entry }) => {
        values.push(
          entry.auditSessionId, seal.seal(sessionId), entry.user.username, entry.user.userId, JSON.stringify(entry.user.profile), entry.ip, entry.userAgent,
          entry.loginTime, entry.expiresAt, entry.absoluteExpiresAt ?? null, Math.min(entry.expiresAt, entry.absoluteExpiresAt ?? Number.POSITIVE_INFINITY),
        )
        return `(${p()}, ${p()}, ${p()}, ${p()}, ${p()}, ${p()}, ${p()}, ${time()}, ${time()}, ${time()}, ${time()})`
      })
      const insert = `INSERT INTO ${table} (session_id, sealed_id, username, user_id, profile, ip, user_agent, login_time, expires_at, absolute_expires_at, due_at) VALUES ${tuples.join(', ')}`
      const update = 'sealed_id, username, user_id, profile, ip, user_agent, login_time, expires_at, absolute_expires_at, due_at'.split(', ')
      if (pg) return `${insert} ON CONFLICT (session_id) DO ${replace ? `UPDATE SET ${update.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}, ended = NULL, claimed_by = NULL, claimed_until = NULL` : 'NOTHING'}`
      return replace
        ? `${insert} ON DUPLICATE KEY UPDATE ${update.map((c) => `${c} = VALUES(${c})`).join(', ')}, ended = NULL, claimed_by = NULL, claimed_until = NULL`
        : insert.replace(/^INSERT/, 'INSERT IGNORE')
    })
    await client.query(text, values)
  }
  /** The statement writing the last batch, while it runs: a removal waits for it, or would miss its row. */
  let writing: Promise<void> | undefined
  function flush(): Promise<void> {
    clearTimeout(timer)
    timer = undefined
    if (pending.size === 0) return writing ?? Promise.resolve()
    const batch = [...pending.values()]
    pending.clear()
    const previous = writing
    const current = (async () => {
      await previous
      await write(batch)
    })().finally(() => {
      if (writing === current) writing = undefined
    })
    writing = current
    return current
  }
  async function write(batch: readonly PendingAdd[]): Promise<void> {
    try {
      // Adoptions first: a login queued in the same batch then overwrites what an adoption kept.
      await insertRows(batch.filter((add) => !add.replace), false)
      await insertRows(batch.filter((add) => add.replace), true)
      for (const add of batch) for (const waiter of add.waiters) waiter.resolve()
    } catch (err) {
      for (const add of batch) for (const waiter of add.waiters) waiter.reject(err)
    }
  }

  return {
    description: `${table} in ${client.description}`,

    add(sessionId, entry, replace) {
      // Logins come in bursts: their rows go in one statement per flush, not a round trip each.
      return new Promise<void>((resolve, reject) => {
        const queued = pending.get(sessionId)
        const waiters = [...(queued?.waiters ?? []), { resolve, reject }]
        // An adoption never overrides a login queued before it.
        pending.set(sessionId, queued?.replace && !replace ? { ...queued, waiters } : { sessionId, entry, replace, waiters })
        if (pending.size >= ADD_BATCH) void flush()
        else timer ??= setTimeout(() => void flush(), ADD_DELAY_MS).unref()
      })
    },

    async remove(sessionId) {
      // A session that ends before its row was written (a login then a quick logout) never reaches the table.
      const queued = pending.get(sessionId)
      if (queued) {
        pending.delete(sessionId)
        for (const waiter of queued.waiters) waiter.resolve()
      }
      await writing
      const rows = await client.query<Row>(sql(() => `DELETE FROM ${table} WHERE session_id = ${p()} AND ended IS NULL RETURNING ${columns}`), [hashSessionId(sessionId)])
      return rows[0] === undefined ? queued?.entry : entryOf(rows[0])
    },

    close: flush,

    async claimDue(now, limit, leaseMs, only) {
      const token = `${instance}:${++claims}`
      let rows: Row[]
      if (pg) {
        const text = sql(() => {
          const claimedBy = p()
          const until = time()
          const free = `(claimed_until IS NULL OR claimed_until < ${time()})`
          const which = only === undefined ? `due_at <= ${time()}` : `session_id = ${p()}`
          return `UPDATE ${table} s SET claimed_by = ${claimedBy}, claimed_until = ${until} FROM ` +
            `(SELECT session_id FROM ${table} WHERE ${which} AND ${free} ORDER BY due_at LIMIT ${p()} FOR UPDATE SKIP LOCKED) d ` +
            `WHERE s.session_id = d.session_id RETURNING ${columnsOf('s.')}`
        })
        // Parameter order follows the placeholders above: claimer, lease end, now, due or id, limit.
        rows = await client.query<Row>(text, [token, now + leaseMs, now, only === undefined ? now : hashSessionId(only), limit])
      } else {
        const text = sql(() =>
          `UPDATE ${table} SET claimed_by = ${p()}, claimed_until = ${time()} WHERE ${only === undefined ? `due_at <= ${time()}` : `session_id = ${p()}`} ` +
          `AND (claimed_until IS NULL OR claimed_until < ${time()}) ORDER BY due_at LIMIT ${p()}`)
        await client.query(text, [token, now + leaseMs, only === undefined ? now : hashSessionId(only), now, limit])
        rows = await client.query<Row>(sql(() => `SELECT ${columns} FROM ${table} WHERE claimed_by = ${p()}`), [token])
      }
      const claimed: LedgerClaim[] = []
      for (const row of rows) {
        let sessionId: string
        try {
          sessionId = seal.unseal(row.sealed_id)
        } catch {
          // Sealed under another key: some other deployment's row, or edited. Left for its owner.
          continue
        }
        const claim: LedgerClaim = { sessionId, entry: entryOf(row), ended: row.ended === null ? undefined : (row.ended as SessionEndKind) }
        tokens.set(claim, token)
        claimed.push(claim)
      }
      return claimed
    },

    async extend(claim, expiresAt) {
      const absolute = claim.entry.absoluteExpiresAt ?? Number.POSITIVE_INFINITY
      await client.query(
        sql(() => `UPDATE ${table} SET expires_at = ${time()}, due_at = ${time()}, claimed_by = NULL, claimed_until = NULL WHERE session_id = ${p()} AND claimed_by = ${p()}`),
        [expiresAt, Math.min(expiresAt, absolute), claim.entry.auditSessionId, tokenOf(claim)],
      )
    },

    async expire(claim, kind) {
      if (claim.ended !== undefined) return true
      const rows = await client.query(
        sql(() => `UPDATE ${table} SET ended = ${p()} WHERE session_id = ${p()} AND claimed_by = ${p()} AND ended IS NULL${pg ? ' RETURNING session_id' : ''}`),
        [kind, claim.entry.auditSessionId, tokenOf(claim)],
      )
      return affected(rows) > 0
    },

    async forget(claim) {
      await client.query(sql(() => `DELETE FROM ${table} WHERE session_id = ${p()} AND claimed_by = ${p()}`), [claim.entry.auditSessionId, tokenOf(claim)])
    },

    async count() {
      const rows = await client.query<{ n: number | string }>(`SELECT count(*) AS n FROM ${table}`)
      return Number(rows[0]?.n ?? 0)
    },
  }
}

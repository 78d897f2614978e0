import { randomUUID } from 'node:crypto'
import { hasTable, siblingTable } from '../deliver/sibling-table.js'
import type { SqlClient } from '../deliver/sql-client.js'
import { isUnavailable } from '../deliver/sql-client.js'
import { backoffDelay } from '../deliver/outbox.js'
import type { UserProfile } from '../types.js'
import type { LedgerClaim, LedgerEntry, SessionEnded, SessionEndKind, SessionLedger } from './session-ledger.js'
import type { SessionSeal } from './session-seal.js'
import { insertLedgerRows, ledgerSql, REMOVED } from './session-ledger-rows.js'
import type { LedgerAdd } from './session-ledger-rows.js'
import type { JournaledAdd, SessionLedgerJournal } from './session-ledger-journal.js'

export interface DatabaseLedgerOptions {
  readonly client: SqlClient
  /** The audit table as SQL text (`schema.securitylog`, or MariaDB's quoted name): the ledger sits beside it. */
  readonly auditTable: string
  readonly hashSessionId: (sessionId: string) => string
  readonly seal: SessionSeal
  /**
   * Writes new sessions; the app hands this to the database thread, which seals and writes them there.
   * @defaultValue {@link insertLedgerRows} through `client`, on the calling thread
   */
  readonly insert?: (rows: readonly LedgerAdd[], replace: boolean) => Promise<void>
  /** Told when writes wait for an unreachable database. */
  readonly warn?: (message: string) => void
  /**
   * Where writes wait until they are in the table (the app's spool directory): each session is journaled
   * when it is added, so neither a kill nor an outage loses it. Without one they wait in memory, at most
   * {@link MAX_PENDING} sessions, and are lost if the process ends first.
   */
  readonly journal?: SessionLedgerJournal
}

/** The ledger table next to an audit table: same schema (PostgreSQL) or database (MariaDB). */
export function sessionLedgerTable(dialect: SqlClient['dialect'], auditTable: string): string {
  return siblingTable(dialect, auditTable, 'securitylog_session')
}

/** Whether the database has the ledger table (procedures/securitylogging.sql creates it). */
export async function hasSessionLedger(client: SqlClient, auditTable: string): Promise<boolean> {
  return hasTable(client, sessionLedgerTable(client.dialect, auditTable), 'session_id')
}

/**
 * Runs a MariaDB statement again when InnoDB chose it as a deadlock victim (1213) or it waited too long
 * for a lock (1205): concurrent claims lock index ranges in different orders, and InnoDB resolves that
 * by rolling one statement back, which is then safe to repeat.
 */
async function retryDeadlocks<T>(statement: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement()
    } catch (err) {
      const errno = (err as { errno?: unknown }).errno
      if ((errno !== 1213 && errno !== 1205) || attempt >= attempts) throw err
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * attempt))
    }
  }
}

/**
 * The `ended` column once an end is confirmed: the kind, and for `lost` when it was found, in base 36
 * (`lost@mid4r2kq`, within MariaDB's VARCHAR(16)); a timeout and the absolute lifetime take their time
 * from the row itself.
 */
function endedText(kind: SessionEndKind, at: number): string {
  return kind === 'lost' ? `lost@${at.toString(36)}` : kind
}

function endedOf(text: string | null): SessionEnded | undefined {
  if (text === null) return undefined
  const [kind, at] = text.split('@')
  return { kind: kind as SessionEndKind, at: at === undefined || !/^[0-9a-z]+$/.test(at) ? undefined : parseInt(at, 36) }
}

/**
 * Ledger rows written per statement, and the longest a login's row waits for others. The row is in the
 * journal meanwhile, so the wait costs no safety; fewer, fuller statements cost the database less
 * (bench/database-thread.ts: 55 µs a row at 15 a statement, 29 at 100).
 */
const ADD_BATCH = 500
const ADD_DELAY_MS = 100
/** The wait of a session the journal did not take (none, or its disk refused): it is in memory only meanwhile. */
const UNJOURNALED_DELAY_MS = 20
/**
 * Statements refused, while splitting a refused one in halves, before any went in: then the refusal is
 * taken for the database's (a read-only standby, say), and the write is tried again later. 16 find up to
 * about 8 bad rows among 500.
 */
const PROBE_STATEMENTS = 16

/**
 * A refusal of a row's values, which no retry mends: SQLSTATE class 22 (data exception: a value too long,
 * a NUL byte) or 23 (integrity), and MariaDB's errors of that kind reported as HY000.
 */
function isRowRefusal(err: unknown): boolean {
  const e = err as { code?: unknown; sqlState?: unknown; errno?: unknown }
  const state = typeof e.sqlState === 'string' ? e.sqlState : typeof e.code === 'string' ? e.code : ''
  return /^2[23][0-9A-Z]{3}$/.test(state) || [1048, 1264, 1292, 1366, 1406].includes(e.errno as number)
}
/** Most new sessions kept in memory while the database is unreachable, when there is no journal. */
const MAX_PENDING = 100_000

/**
 * A removal leaves its row behind as a marker for this long: a request that loaded the session on
 * another instance before the logout may adopt it after (each instance's own memory of ended sessions
 * reaches no other), and without the marker the row would come back and the session be reported as
 * timed out after its LOGOUT. Longer than any request, and than an adoption's write waiting out a few
 * minutes of outage (the backoff tries at least every 30 s).
 */
const REMOVED_MEMORY_MS = 10 * 60_000
/** How many removals waiting for their markers keep the time they were asked for. */
const MAX_REMOVAL_TIMES = 100_000
/** How often an instance's sweep deletes the markers past {@link REMOVED_MEMORY_MS}, and how many per statement. */
const PURGE_EVERY_MS = 60_000
const PURGE_BATCH = 5000

interface PendingAdd extends JournaledAdd {
  /** Whether the journal has it: then it is safe on disk whatever happens to this batch. */
  readonly journaled: boolean
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
  const table = sessionLedgerTable(client.dialect, options.auditTable)
  const { pg, p, sql, time, ms } = ledgerSql(client.dialect)
  const insertRows = options.insert ?? ((rows: readonly LedgerAdd[], replace: boolean) => insertLedgerRows(client, table, seal, rows, replace))
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

  const { journal } = options
  const pending = new Map<string, PendingAdd>()
  /**
   * Removals waiting for the next write: each resolves with the row once it is deleted. A write deletes
   * them before it clears the journal, so a removal's journal line outlives the row it removes.
   */
  const removals = new Map<string, Array<(entry: LedgerEntry | undefined) => void>>()
  /** Removals whose journal line could not be written (the disk refused): tried again at each failed write. */
  const offDisk = new Set<string>()
  let journalOpen = journal !== undefined
  let timer: NodeJS.Timeout | undefined
  /** When the armed timer fires: an earlier request re-arms it, a later one waits for it. */
  let timerAt = Number.POSITIVE_INFINITY
  let outages = 0
  let closed = false
  /** While the database is down, the earliest the next write may go: new logins must not cut the backoff short. */
  let retryAt = 0
  /** A timer fired while a write was under way: the next write goes once that one has finished. */
  let deferred = false
  /**
   * The journal holds writes that memory does not, up to this position (-1: none): sessions a killed
   * process left, or ones a failed write left to the journal. The next write reads them back.
   */
  let aheadTo = journal && journal.size() > 0 ? journal.position() : -1
  /** Reads of the journal that failed in a row (a disk error, say): they back off. */
  let unreadTries = 0
  const disarm = (): void => {
    clearTimeout(timer)
    timer = undefined
    timerAt = Number.POSITIVE_INFINITY
  }
  const schedule = (delayMs: number): void => {
    const at = Math.max(Date.now() + delayMs, retryAt)
    if (timer !== undefined && timerAt <= at) return
    disarm()
    timerAt = at
    timer = setTimeout(() => {
      timer = undefined
      timerAt = Number.POSITIVE_INFINITY
      // One try at a time: a try that hangs (a dropped connection, up to the connect timeout) must not
      // have a queue of tries form behind it, each holding its sessions outside the journal's reach and
      // running back to back, without backoff, once it fails.
      if (writing) deferred = true
      else void flush()
    }, at - Date.now()).unref()
  }
  /** How long the next try waits after `outages` failed ones. */
  const retryDelay = (): number => backoffDelay(outages, 100, 30_000)
  /** After a failed write: the next one waits out the backoff, even if a login already asked for sooner. */
  const backOff = (delayMs: number): void => {
    retryAt = Date.now() + delayMs
    disarm()
    schedule(delayMs)
  }
  /** The last batch's write, while it runs: writes go one at a time, each after the one before. */
  let writing: Promise<void> | undefined
  function flush(): Promise<void> {
    disarm()
    if (pending.size === 0 && removals.size === 0 && (journal?.size() ?? 0) === 0) return writing ?? Promise.resolve()
    const batch = [...pending.values()]
    const removing = new Map(removals)
    // Everything journaled so far is this batch's, or waits in the journal: a write that succeeds clears it.
    const mark = journal?.position() ?? 0
    pending.clear()
    removals.clear()
    const previous = writing
    const current = (async () => {
      await previous
      await write(batch, removing, mark)
    })().finally(() => {
      if (writing !== current) return
      writing = undefined
      if (deferred && !closed) {
        deferred = false
        schedule(0)
      }
    })
    writing = current
    return current
  }
  /** Deletes live rows by audit session id; returns what each deleted row held. */
  const deleteRows = async (hashed: readonly string[]): Promise<Map<string, LedgerEntry>> => {
    if (hashed.length === 0) return new Map()
    const rows = await client.query<Row>(sql(() => `DELETE FROM ${table} WHERE session_id IN (${hashed.map(() => p()).join(', ')}) AND ended IS NULL RETURNING ${columns}`), hashed)
    return new Map(rows.map((row) => [row.session_id, entryOf(row)]))
  }
  /**
   * When each removal waiting for its marker was asked for, by audit session id: the marker's
   * `login_time`, which a login of the same id made later must be newer than (one written late, older,
   * is refused). A removal read back from a journal after a restart has none, and is dated when it is
   * written.
   */
  const removedAt = new Map<string, number>()
  /**
   * Leaves a marker for each removed audit session id, row or not (a login whose row was never written
   * may have been adopted elsewhere meanwhile). The marker overrides a live row too: an adoption written
   * since the delete. An end already confirmed is kept, for its report. The marker drops the sealed
   * store id: after a logout it names nothing anyone needs.
   */
  const markRemoved = async (hashed: readonly string[]): Promise<void> => {
    if (hashed.length === 0) return
    const now = Date.now()
    const times = hashed.map((id) => removedAt.get(id) ?? now)
    const until = now + REMOVED_MEMORY_MS
    const replaceable = (q: string): string => `${q}ended IS NULL OR ${q}ended = '${REMOVED}'`
    const marked = ['sealed_id', 'login_time', 'expires_at', 'due_at', 'claimed_by', 'claimed_until', 'ended'] as const
    const columnList = `session_id, sealed_id, profile, user_agent, ${marked.slice(1).join(', ')}`
    if (pg) {
      await client.query(sql(() => {
        const [ids, ats, forgetAt] = [`${p()}::text[]`, `${p()}::float8[]`, time()]
        return `INSERT INTO ${table} AS s (${columnList}) SELECT r.id, '', '{}', '', to_timestamp(r.at / 1000), to_timestamp(r.at / 1000), ${forgetAt}, NULL::text, 'infinity'::timestamptz, '${REMOVED}' ` +
          `FROM unnest(${ids}, ${ats}) AS r(id, at) ` +
          `ON CONFLICT (session_id) DO UPDATE SET ${marked.map((c) => `${c} = EXCLUDED.${c}`).join(', ')} WHERE ${replaceable('s.')}`
      }), [hashed, times, until])
    } else {
      // MariaDB assigns left to right, each assignment seeing the ones before: `ended` goes last.
      const text = sql(() =>
        `INSERT INTO ${table} (${columnList}) VALUES ${hashed.map(() => `(${p()}, '', '{}', '', ${time()}, ${time()}, ${time()}, NULL, '9999-12-31 23:59:59', '${REMOVED}')`).join(', ')} ` +
        `ON DUPLICATE KEY UPDATE ${marked.map((c) => `${c} = IF(${replaceable('')}, VALUES(${c}), ${c})`).join(', ')}`)
      await retryDeadlocks(() => client.query(text, hashed.flatMap((id, i) => [id, times[i], times[i], until])))
    }
    for (const id of hashed) removedAt.delete(id)
  }
  /** The sweep's epoch ms after which it next deletes old markers. */
  let purgeAt = 0
  const purgeRemoved = async (now: number): Promise<void> => {
    const text = sql(() => pg
      ? `DELETE FROM ${table} WHERE session_id IN (SELECT session_id FROM ${table} WHERE due_at <= ${time()} AND ended = '${REMOVED}' ORDER BY due_at LIMIT ${p()} FOR UPDATE SKIP LOCKED) RETURNING session_id`
      : `DELETE FROM ${table} WHERE due_at <= ${time()} AND ended = '${REMOVED}' ORDER BY due_at LIMIT ${p()}`)
    // A full statement may have left more: after a burst of logouts, or an instance that swept no one.
    while (affected(await retryDeadlocks(() => client.query(text, [now, PURGE_BATCH]))) >= PURGE_BATCH) continue
  }
  /** Whether the journal refused a write since its last success: a full disk warns once, not per login or logout. */
  let journalFailing = false
  /** Appends to the journal; false when there is none or the disk refused (full). */
  const toJournal = (adds: readonly JournaledAdd[], removed: readonly string[]): boolean => {
    if (!journal) return false
    try {
      journal.append(adds, removed)
      journalFailing = false
      return true
    } catch (err) {
      if (!journalFailing) options.warn?.(`could not write the session ledger journal (${(err as Error).message}); sessions that wait for the database are kept in memory`)
      journalFailing = true
      return false
    }
  }
  /**
   * Moves sessions to the journal: they are as safe there as in the table, so their waiters are told.
   * False when there is no journal or the disk refused: the caller keeps them in memory.
   */
  const spill = (adds: readonly PendingAdd[], removed: readonly string[]): boolean => {
    if (!toJournal(adds, removed)) return false
    for (const add of adds) for (const waiter of add.waiters) waiter.resolve()
    return true
  }
  async function write(batch: readonly PendingAdd[], removing: ReadonlyMap<string, Array<(entry: LedgerEntry | undefined) => void>>, mark: number): Promise<void> {
    const ahead = aheadTo >= 0
    // During an outage the journal may hold many thousands of sessions: it is read (and unsealed) only
    // once the database answers again, not on every try.
    const probe = outages > 0 && ahead ? client.query('SELECT 1').then(() => undefined, (err: unknown) => err) : undefined
    const unreachable = await probe
    // What waits on disk comes first: what is in memory is newer (and journaled too, up to `mark`).
    let backlog: ReturnType<SessionLedgerJournal['backlog']> | undefined
    let unread = false
    try {
      backlog = unreachable === undefined && ahead ? journal?.backlog(mark) : undefined
      unreadTries = 0
    } catch (err) {
      unreadTries++
      // Written without it, and the journal is kept: the next write reads it again.
      unread = true
      options.warn?.(`could not read the session ledger journal back (${(err as Error).message}); it is kept for the next write`)
    }
    const adds = new Map<string, JournaledAdd>(backlog?.adds)
    for (const add of batch) {
      // An adoption never overrides a login queued before it.
      if (!(adds.get(add.entry.auditSessionId)?.replace && !add.replace)) adds.set(add.entry.auditSessionId, add)
    }
    const removalHashes = new Map<string, string>([...removing.keys()].map((id) => [id, hashSessionId(id)]))
    const cancelled = new Map<string, LedgerEntry | undefined>(backlog?.removals)
    const batched = new Set<JournaledAdd>(batch)
    for (const [sessionId, hashed] of removalHashes) {
      // Read back, the journal has put its removals and logins in order already.
      if (backlog && !offDisk.has(sessionId)) continue
      const add = adds.get(hashed)
      // A removal takes its session out of `pending`: a login of it in the batch came after (a re-login
      // with the same store id) and goes in once the old row is deleted.
      if (add !== undefined && batched.has(add)) {
        cancelled.set(hashed, cancelled.get(hashed))
        continue
      }
      cancelled.set(hashed, add?.entry ?? cancelled.get(hashed))
      adds.delete(hashed)
    }
    /** Removals whose DELETE answered (and whose waiters were told), before anything else failed. */
    const deleted = new Set<string>()
    /** Sessions the database refused (not an outage), by audit session id, with its error. */
    const refused = new Map<string, unknown>()
    /**
     * One row refused (a value too long for a column, a NUL byte, a trigger) must not keep the others
     * out, nor stay in the journal to be refused again at every write after: a refused statement is split
     * in halves, level by level, down to the rows it refuses. An outage fails the write as a whole.
     */
    const insert = async (rows: readonly LedgerAdd[], replace: boolean): Promise<void> => {
      // Judged by this statement's rows alone: a database that turned read-only after an earlier one
      // went in must not have every later row taken for a bad one.
      let inserted = false
      let failures = 0
      /** Rows refused alone, not for their values: the rows' fault if others went in, else the database's. */
      const doubtful = new Map<string, unknown>()
      let parts: Array<readonly LedgerAdd[]> = [rows]
      while (parts.length > 0) {
        const next: Array<readonly LedgerAdd[]> = []
        for (const part of parts) {
          try {
            await insertRows(part, replace)
            inserted = true
          } catch (err) {
            if (isUnavailable(err)) throw err
            if (part.length === 1) {
              ;(isRowRefusal(err) ? refused : doubtful).set(part[0]!.entry.auditSessionId, err)
              continue
            }
            // Only a refusal not of the rows' values spends the budget: bad values are found, however many.
            if (!inserted && !isRowRefusal(err) && ++failures > PROBE_STATEMENTS) throw err
            const middle = Math.ceil(part.length / 2)
            next.push(part.slice(0, middle), part.slice(middle))
          }
        }
        parts = next
      }
      if (doubtful.size > 0) {
        // None went in: the database refuses writes, not these rows.
        if (!inserted) throw doubtful.values().next().value
        for (const [key, err] of doubtful) refused.set(key, err)
      }
    }
    try {
      if (unreachable !== undefined) throw unreachable
      // Removals first: a login that came after its session's removal then stays.
      const removed = new Map<string, LedgerEntry>()
      const waitingOn = new Map([...removalHashes].map(([sessionId, hashed]) => [hashed, sessionId]))
      const tell = (sessionId: string): void => {
        const hashed = removalHashes.get(sessionId)!
        deleted.add(sessionId)
        for (const resolve of removing.get(sessionId)!) resolve(removed.get(hashed) ?? cancelled.get(hashed))
      }
      const hashes = [...cancelled.keys()]
      for (let i = 0; i < hashes.length; i += ADD_BATCH) {
        const part = hashes.slice(i, i + ADD_BATCH)
        for (const [hashed, entry] of await deleteRows(part)) removed.set(hashed, entry)
        try {
          await markRemoved(part)
        } finally {
          // Told once their markers are in, or failed, with the rows the DELETE removed: if a later
          // statement fails, the retry finds these rows gone, and a SESSIONEND would go without its entry.
          for (const hashed of part) {
            const sessionId = waitingOn.get(hashed)
            if (sessionId !== undefined) tell(sessionId)
          }
        }
      }
      // A removal the journal's replay folded into a later login of its session had no row to delete.
      for (const sessionId of removing.keys()) if (!deleted.has(sessionId)) tell(sessionId)
      // Adoptions first: a login queued in the same batch then overwrites what an adoption kept.
      // In statements of ADD_BATCH rows: after an outage the backlog may be many thousands of sessions,
      // and a statement that fails then costs one statement's work, not the whole backlog's.
      for (const replace of [false, true]) {
        const chosen = [...adds.values()].filter((add) => add.replace === replace).map(({ sessionId, sealed, entry }) => ({ sessionId, sealed, entry }))
        for (let i = 0; i < chosen.length; i += ADD_BATCH) await insert(chosen.slice(i, i + ADD_BATCH), replace)
      }
      if (refused.size > 0) {
        const [first] = refused.values()
        options.warn?.(`${table} in ${client.description} refused ${refused.size} sessions (${(first as Error).message}); they are not watched for timeouts`)
      }
      outages = 0
      retryAt = 0
      if (journal && !unread) {
        try {
          journal.clear(mark)
        } catch (err) {
          // The rows are in the table: a journal written again later only repeats them, harmlessly.
          options.warn?.(`could not clear the session ledger journal (${(err as Error).message})`)
        }
        // What was left to the journal while this write ran is read back by the next one.
        if (aheadTo <= mark) aheadTo = -1
        else if (!closed) schedule(ADD_DELAY_MS)
      } else if (unread && !closed) {
        schedule(backoffDelay(unreadTries, 1000, 300_000))
      }
      for (const add of batch) {
        const refusal = refused.get(add.entry.auditSessionId)
        for (const waiter of add.waiters) refusal === undefined ? waiter.resolve() : waiter.reject(refusal)
      }
      for (const sessionId of removing.keys()) offDisk.delete(sessionId)
    } catch (err) {
      const kept = new Set(batch.filter((add) => adds.get(add.entry.auditSessionId) === add))
      const outage = isUnavailable(err)
      // With a journal, every failure waits and tries again: nothing is lost by waiting, and a database
      // that refuses every write (read-only, a bad password) must not drop what the journal holds.
      if (!journal && (!outage || closed)) {
        for (const add of batch) for (const waiter of add.waiters) waiter.reject(err)
        for (const waiters of removing.values()) for (const resolve of waiters) resolve(undefined)
        return
      }
      // The database is down: nothing is dropped. A session left out of the ledger would never be
      // reported as timed out, and one whose removal is lost would be reported after its logout.
      outages++
      // Sessions journaled at their login are on disk already, and so are removals (see remove()); the
      // others go there now, if they can.
      const unjournaled = [...removing.keys()].filter((sessionId) => offDisk.has(sessionId))
      const spilled = spill([...kept].filter((add) => !add.journaled), unjournaled.map((sessionId) => removalHashes.get(sessionId)!))
      if (spilled) for (const sessionId of unjournaled) offDisk.delete(sessionId)
      // The journal holds this batch and its removals now, whatever could be spilled: the next write reads it.
      if (journal) aheadTo = Math.max(aheadTo, journal.position())
      // Removals that came while this write ran: newer than this batch's logins of the same session.
      const later = new Set(removals.keys())
      for (const add of batch) {
        if (add.journaled || (spilled && !kept.has(add))) {
          for (const waiter of add.waiters) waiter.resolve()
        } else if (!spilled) {
          const newer = pending.get(add.sessionId)
          if (later.has(add.sessionId)) {
            for (const waiter of add.waiters) waiter.resolve()
            // Dropped before it reached the table, the login leaves the removal's DELETE nothing to find:
            // the removal gives its entry, as remove() does for a login still queued, or the session's
            // end (a destroy, a new login) goes unreported. Done before this batch's own removals of the
            // session are put back: they came before this login and must not be given it.
            removals.set(add.sessionId, removals.get(add.sessionId)!.map((resolve) => (entry) => resolve(entry ?? add.entry)))
          } else pending.set(add.sessionId, newer ? { ...newer, waiters: [...add.waiters, ...newer.waiters] } : add)
        }
      }
      for (const [sessionId, waiters] of removing) {
        // Done, but the journal still holds the login it cancelled: one not on disk must cancel it again.
        if (deleted.has(sessionId)) {
          if (offDisk.has(sessionId)) removals.set(sessionId, removals.get(sessionId) ?? [])
          continue
        }
        // Not an outage: the refusal may last, and whoever waits (the sweep) must not wait for ever.
        if (!outage) for (const resolve of waiters) resolve(undefined)
        removals.set(sessionId, [...(outage ? waiters : []), ...(removals.get(sessionId) ?? [])])
      }
      if (closed) {
        // Ending with the database down: the removals are in the journal, for the next process to apply.
        for (const waiters of removals.values()) for (const resolve of waiters) resolve(undefined)
        removals.clear()
        // Sessions the journal could not take are lost with the process: their callers hear of it.
        for (const add of pending.values()) if (!add.journaled) for (const waiter of add.waiters) waiter.reject(err)
        pending.clear()
        return
      }
      const delay = retryDelay()
      const where = journal ? `${journal.size()} writes wait in the journal in the spool directory` : `${pending.size} new and ${removals.size} ended sessions wait in memory`
      const what = outage ? 'is unreachable' : 'could not be written'
      options.warn?.(`the session ledger ${table} in ${client.description} ${what} (${(err as Error).message}); ${where}, next try in ${delay} ms`)
      backOff(delay)
    }
  }

  // Sessions a killed process left in its journal go into the table as soon as the database answers.
  if (aheadTo >= 0) schedule(0)

  return {
    description: `${table} in ${client.description}`,

    add(sessionId, entry, replace) {
      // Logins come in bursts: their rows go in one statement per flush, not a round trip each.
      return new Promise<void>((resolve, reject) => {
        const queued = pending.get(sessionId)
        // The database is still down: what waits goes to disk instead of growing the heap.
        if (!queued && journal && outages > 0 && pending.size >= ADD_BATCH && spill([...pending.values()], [])) {
          pending.clear()
        } else if (!queued && pending.size >= MAX_PENDING) {
          return reject(new Error(`${pending.size} sessions are already waiting for the session ledger ${table} (the database is unreachable)`))
        }
        const waiters = [...(queued?.waiters ?? []), { resolve, reject }]
        // An adoption never overrides a login queued before it.
        if (queued?.replace && !replace) return void pending.set(sessionId, { ...queued, waiters })
        const add: JournaledAdd = { sessionId, sealed: journal ? seal.seal(sessionId) : undefined, entry, replace }
        // On disk before the response goes: a process killed before the row is written loses nothing.
        const journaled = journalOpen && toJournal([add], [])
        if (closed) {
          // The last write has taken its batch: the journal keeps this one for the next process.
          pending.delete(sessionId)
          const closing = new Error(`authtrail: the session ledger ${table} is closed`)
          for (const waiter of waiters) journaled ? waiter.resolve() : waiter.reject(closing)
          return
        }
        if (journaled && outages > 0) {
          // The database is still down: the journal holds it, and the heap need not.
          if (queued) for (const waiter of queued.waiters) waiter.resolve()
          pending.delete(sessionId)
          aheadTo = journal!.position()
          resolve()
          return schedule(ADD_DELAY_MS)
        }
        pending.set(sessionId, { ...add, journaled, waiters })
        if (pending.size >= ADD_BATCH && outages === 0 && !writing) void flush()
        else schedule(journaled ? ADD_DELAY_MS : UNJOURNALED_DELAY_MS)
      })
    },

    remove(sessionId) {
      const hashed = hashSessionId(sessionId)
      // Bounded as the removals are: one a session, until its marker is written (or, past an outage of
      // that many logouts, dated when written).
      if (removedAt.size < MAX_REMOVAL_TIMES) removedAt.set(hashed, Date.now())
      // On disk before anything else: the session's login may be in the journal, and a process killed
      // now must not bring it back. The next write deletes the row, then clears the journal.
      const onDisk = journalOpen && spill([], [hashed])
      // A session that ends before its row was written (a login then a quick logout) never reaches the table.
      const queued = pending.get(sessionId)
      if (queued) {
        pending.delete(sessionId)
        for (const waiter of queued.waiters) waiter.resolve()
      }
      // After close the journal holds it for the next process, which applies it.
      if (closed) return onDisk ? Promise.resolve(queued?.entry) : Promise.reject(new Error(`authtrail: the session ledger ${table} is closed`))
      if (journal && !onDisk) offDisk.add(sessionId)
      return new Promise<LedgerEntry | undefined>((resolve) => {
        removals.set(sessionId, [...(removals.get(sessionId) ?? []), (entry) => resolve(entry ?? queued?.entry)])
        // Soon, with any write already asked for; while the database is down, within the backoff: a
        // logout makes no try of its own.
        schedule(0)
      })
    },

    async close() {
      closed = true
      await flush()
      journalOpen = false
      journal?.close()
    },

    async claimDue(now, limit, leaseMs, only) {
      if (only === undefined && now >= purgeAt) {
        purgeAt = now + PURGE_EVERY_MS
        await purgeRemoved(now)
      }
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
        await retryDeadlocks(() => client.query(text, [token, now + leaseMs, only === undefined ? now : hashSessionId(only), now, limit]))
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
        const claim: LedgerClaim = { sessionId, entry: entryOf(row), ended: endedOf(row.ended) }
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

    async expire(claim, kind, at) {
      if (claim.ended !== undefined) return true
      const rows = await client.query(
        sql(() => `UPDATE ${table} SET ended = ${p()} WHERE session_id = ${p()} AND claimed_by = ${p()} AND ended IS NULL${pg ? ' RETURNING session_id' : ''}`),
        [endedText(kind, at), claim.entry.auditSessionId, tokenOf(claim)],
      )
      return affected(rows) > 0
    },

    async forget(claim) {
      await client.query(sql(() => `DELETE FROM ${table} WHERE session_id = ${p()} AND claimed_by = ${p()}`), [claim.entry.auditSessionId, tokenOf(claim)])
    },

    async count() {
      const rows = await client.query<{ n: number | string }>(`SELECT count(*) AS n FROM ${table} WHERE ended IS NULL OR ended <> '${REMOVED}'`)
      return Number(rows[0]?.n ?? 0)
    },
  }
}

import type { UserFacts } from './request-facts.js'

/**
 * One authenticated session as authtrail last saw it. Kept because express-session's stores delete
 * expired sessions without telling anyone (MemoryStore lazily, connect-pg-simple by a prune timer, Redis
 * by TTL): the ledger is how a timeout is noticed at all.
 */
export interface LedgerEntry {
  readonly user: UserFacts
  /** The id as it is written to the audit trail (a keyed hash unless raw ids were chosen). */
  readonly auditSessionId: string
  readonly ip: string
  readonly userAgent: string
  /** Epoch ms of the login (or of the first request this ledger saw for a session adopted later). */
  readonly loginTime: number
  /** Epoch ms at which the session store considers the session expired, as last known. */
  readonly expiresAt: number
  /** Epoch ms at which the session ends whatever its activity, when an absolute lifetime is configured. */
  readonly absoluteExpiresAt: number | undefined
}

/** A due session that one sweep holds until it is reported, extended or its lease runs out. */
export interface LedgerClaim {
  /** The session store's id (unsealed), to ask the store whether the session still exists. */
  readonly sessionId: string
  readonly entry: LedgerEntry
  /**
   * Set when an earlier claimer confirmed how the session ended and then died before reporting it: the
   * store was already asked, the event only remains to be recorded.
   */
  readonly ended: SessionEnded | undefined
}

/** How a session was confirmed ended, and when: a re-report gives the event the same time and id. */
export interface SessionEnded {
  readonly kind: SessionEndKind
  /** Epoch ms it was confirmed; undefined for a row marked by an older authtrail. */
  readonly at: number | undefined
}

/** How a watched session ended without a logout: idle expiry, the absolute lifetime, or the store dropping it early. */
export type SessionEndKind = 'timeout' | 'absolute' | 'lost'

/**
 * Authenticated sessions by the store's session id, shared by every instance that uses the same ledger.
 * Ends other than expiry (logout, a new login, destruction) remove the entry, so that only a real expiry
 * is reported as SESSIONTIMEOUT (Showcase reported every non-logout end as one).
 *
 * Expiry is reported in three steps so that neither a crash nor a concurrent logout can make it wrong:
 * {@link claimDue} (a lease), {@link SessionLedger.expire} once the store confirms the session is gone
 * (fails if a logout removed it meanwhile), then {@link SessionLedger.forget} once the event is spooled.
 * A claimer killed between the last two leaves a confirmed entry whose lease runs out; the next sweep
 * reports it again with the same event id, which the procedures ignore if it was stored already.
 */
export interface SessionLedger {
  /** Where the entries live, for messages. */
  readonly description: string
  /**
   * Starts watching a session; `replace` (a login) overwrites an entry, otherwise an existing one is kept,
   * and so is the database ledger's marker of a recent removal.
   */
  add(sessionId: string, entry: LedgerEntry, replace: boolean): Promise<void>
  /**
   * Removes a session that ended for a reason other than expiry; resolves to what it held, if anything.
   * The database ledger leaves a marker for a while, which keeps out an adoption (not a login) of the
   * session by another instance's request under way at the logout; in one process the session watch
   * remembers its own ended sessions.
   */
  remove(sessionId: string): Promise<LedgerEntry | undefined>
  /**
   * Claims up to `limit` sessions due at `now` (or exactly `sessionId`, whatever its expiry, when the store
   * is known to have replaced it) for `leaseMs`.
   */
  claimDue(now: number, limit: number, leaseMs: number, sessionId?: string): Promise<LedgerClaim[]>
  /** The store still has the session: releases the claim with the store's expiry. */
  extend(claim: LedgerClaim, expiresAt: number): Promise<void>
  /** Records how (and when) the session ended, before it is reported: resolves false when it was removed meanwhile (a logout won). */
  expire(claim: LedgerClaim, kind: SessionEndKind, at: number): Promise<boolean>
  /** The expiry is recorded: the entry goes. */
  forget(claim: LedgerClaim): Promise<void>
  /** Sessions watched. */
  count(): Promise<number>
  /** Writes what is queued (the database ledger batches new sessions). */
  close(): Promise<void>
}

interface MemoryRow {
  entry: LedgerEntry
  claimedUntil: number
  ended: SessionEnded | undefined
}

/** The ledger of one process, for script procedures (no database to share) and for tests. */
export function createMemoryLedger(): SessionLedger {
  const rows = new Map<string, MemoryRow>()
  const dueAt = (entry: LedgerEntry): number => Math.min(entry.expiresAt, entry.absoluteExpiresAt ?? Number.POSITIVE_INFINITY)
  return {
    description: 'this process\'s memory',
    async add(sessionId, entry, replace) {
      if (replace || !rows.has(sessionId)) rows.set(sessionId, { entry, claimedUntil: 0, ended: undefined })
    },
    async remove(sessionId) {
      const row = rows.get(sessionId)
      if (!row || row.ended) return undefined
      rows.delete(sessionId)
      return row.entry
    },
    async claimDue(now, limit, leaseMs, only) {
      const claims: LedgerClaim[] = []
      for (const [sessionId, row] of only === undefined ? rows : only && rows.has(only) ? [[only, rows.get(only)!] as const] : []) {
        if (claims.length >= limit) break
        if (row.claimedUntil > now || (only === undefined && dueAt(row.entry) > now)) continue
        row.claimedUntil = now + leaseMs
        claims.push({ sessionId, entry: row.entry, ended: row.ended })
      }
      return claims
    },
    async extend(claim, expiresAt) {
      const row = rows.get(claim.sessionId)
      if (row) rows.set(claim.sessionId, { entry: { ...row.entry, expiresAt }, claimedUntil: 0, ended: undefined })
    },
    async expire(claim, kind, at) {
      const row = rows.get(claim.sessionId)
      if (!row) return false
      row.ended = { kind, at }
      return true
    },
    async forget(claim) {
      rows.delete(claim.sessionId)
    },
    async count() {
      return rows.size
    },
    async close() {},
  }
}

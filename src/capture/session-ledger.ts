import type { UserFacts } from './request-facts.js'

/**
 * One authenticated session as authtrail last saw it. Kept because express-session's stores delete
 * expired sessions without telling anyone (MemoryStore lazily, others by TTL or a prune timer): the
 * ledger is how a timeout is noticed at all.
 */
export interface LedgerEntry {
  readonly user: UserFacts
  /** The id as it is written to the audit trail (already hashed). */
  readonly auditSessionId: string
  readonly ip: string
  readonly userAgent: string
  /** Epoch ms at which the session store considers the session expired. */
  expiresAt: number
}

/**
 * Authenticated sessions by raw session id, in this process's memory. Raw ids never leave the process;
 * entries are removed when a session ends by logout, by a new login or by explicit destruction, so that
 * only a real expiry is reported as SESSIONTIMEOUT (Showcase reported every non-logout end as one).
 */
export interface SessionLedger {
  /** Moves an entry's expiry; returns false when the session is not in the ledger. */
  touch(sessionId: string, expiresAt: number): boolean
  add(sessionId: string, entry: LedgerEntry): void
  get(sessionId: string): LedgerEntry | undefined
  /** Removes a session that ended for a reason other than expiry; returns what it held. */
  remove(sessionId: string): LedgerEntry | undefined
  /** Sessions whose expiry is at or before `now`, to be confirmed with the store before they are reported. */
  due(now: number): Array<readonly [sessionId: string, entry: LedgerEntry]>
  readonly size: number
}

export function createMemoryLedger(): SessionLedger {
  const entries = new Map<string, LedgerEntry>()
  return {
    touch(sessionId, expiresAt) {
      const entry = entries.get(sessionId)
      if (!entry) return false
      entry.expiresAt = expiresAt
      return true
    },
    add(sessionId, entry) {
      entries.set(sessionId, entry)
    },
    get(sessionId) {
      return entries.get(sessionId)
    },
    remove(sessionId) {
      const entry = entries.get(sessionId)
      entries.delete(sessionId)
      return entry
    },
    due(now) {
      const due: Array<readonly [string, LedgerEntry]> = []
      for (const [sessionId, entry] of entries) if (entry.expiresAt <= now) due.push([sessionId, entry])
      return due
    },
    get size() {
      return entries.size
    },
  }
}

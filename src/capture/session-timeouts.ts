import type { LedgerClaim, LedgerEntry, SessionEndKind, SessionLedger } from './session-ledger.js'

/** The part of an express-session store the sweep uses. */
export interface SessionReader {
  get(sessionId: string, callback: (err: unknown, session?: StoredSession | null) => void): void
  destroy(sessionId: string, callback?: (err?: unknown) => void): void
}

/** A session as a store returns it. */
export interface StoredSession {
  readonly cookie?: { readonly expires?: string | Date | null }
  readonly passport?: { readonly user?: unknown }
}

/** How a watched session ended, as the sweep found it. */
export interface SessionEnd {
  readonly kind: SessionEndKind
  readonly entry: LedgerEntry
  /** Epoch ms it was confirmed (kept in the ledger, so a re-report after a crash says the same). */
  readonly at: number
}

export interface TimeoutWatchOptions {
  readonly ledger: SessionLedger
  /** The session store, once known (the option, or the first request's `req.sessionStore`). */
  readonly store: () => SessionReader | undefined
  /**
   * Called once per ended session: an idle expiry (`timeout`), the absolute lifetime reached (`absolute`;
   * the sweep has destroyed the session in the store), or a session the store dropped before its expiry
   * (`lost`). Must record the event before returning (it is spooled synchronously).
   */
  readonly ended: (end: SessionEnd) => void
  readonly error: (message: string) => void
  /** @defaultValue 5000 */
  readonly intervalMs?: number
  /** How long a claim holds before another instance may take the session over. @defaultValue ten sweep intervals, at least 5 s */
  readonly leaseMs?: number
  /** Most sessions claimed per round. @defaultValue 500 */
  readonly batch?: number
  /** Runs at the start of each timer tick (e.g. taking over the spool of a killed instance). */
  readonly onTick?: () => void
}

export interface TimeoutWatch {
  /** Stops the timer; resolves once a sweep or check under way has recorded what it found. */
  stop(): Promise<void>
  /** Checks due sessions now, rather than at the next tick. */
  sweep(): Promise<void>
  /** Checks one session at once, whatever its expiry: a request arrived with its cookie and the store had no session. */
  check(sessionId: string): Promise<void>
}

const read = (store: SessionReader, sessionId: string): Promise<StoredSession | null | undefined> =>
  new Promise((resolve, reject) => store.get(sessionId, (err, session) => (err ? reject(err) : resolve(session))))

const destroy = (store: SessionReader, sessionId: string): Promise<void> =>
  new Promise((resolve, reject) => store.destroy(sessionId, (err) => (err ? reject(err) : resolve())))

/**
 * Reports sessions that ended without a logout. The ledger knows when a session should expire; the store
 * decides (express-session refreshes expiry on every request, and a store keeps its own TTL), so a due
 * session is read back from the store first: gone means expired, present means the ledger learns the
 * new expiry. Nothing is written per request, and a store error leaves the session for the next round:
 * nothing is guessed.
 */
export function watchTimeouts(options: TimeoutWatchOptions): TimeoutWatch {
  const { ledger, ended, error } = options
  // Long enough to ask the store about a whole batch; short enough that a killed instance's claims return soon.
  const leaseMs = options.leaseMs ?? Math.max(5000, 10 * (options.intervalMs ?? 5000))
  const batch = options.batch ?? 500
  let running: Promise<void> | undefined

  const settle = async (store: SessionReader, claim: LedgerClaim, now: number): Promise<void> => {
    const { entry } = claim
    let kind = claim.ended?.kind
    const at = claim.ended?.at ?? now
    if (kind === undefined) {
      const session = await read(store, claim.sessionId)
      const alive = session !== null && session !== undefined && session.passport?.user !== undefined
      if (session && !alive) {
        // Still there but no longer authenticated (a logout this ledger did not see): not a timeout.
        await ledger.remove(claim.sessionId)
        return
      }
      const absolute = entry.absoluteExpiresAt !== undefined && entry.absoluteExpiresAt <= now
      if (alive && !absolute) {
        const expires = session.cookie?.expires ? new Date(session.cookie.expires).getTime() : Number.NaN
        // A store without cookie.expires keeps sessions until told otherwise: look again in a lease.
        return ledger.extend(claim, Number.isFinite(expires) && expires > now ? expires : now + leaseMs)
      }
      kind = alive ? 'absolute' : entry.expiresAt <= now ? 'timeout' : 'lost'
      // Marked before the store is touched, so that the destroy below is not taken for the app's own.
      if (!(await ledger.expire(claim, kind, at))) return // a logout or new login removed it meanwhile
    }
    if (kind === 'absolute') await destroy(store, claim.sessionId)
    ended({ kind, entry, at })
    await ledger.forget(claim)
  }

  const round = async (only?: string): Promise<void> => {
    const store = options.store()
    if (!store) return
    for (;;) {
      const now = Date.now()
      const claims = await ledger.claimDue(now, batch, leaseMs, only)
      const results = await Promise.allSettled(claims.map((claim) => settle(store, claim, now)))
      for (const result of results) {
        if (result.status === 'rejected') error(`could not check a session for expiry in ${ledger.description}: ${(result.reason as Error)?.message ?? String(result.reason)}; will retry`)
      }
      if (only !== undefined || claims.length < batch) return
    }
  }

  let stopped = false
  const checks = new Set<Promise<void>>()
  const sweep = (): Promise<void> => {
    if (stopped) return Promise.resolve()
    running ??= round()
      .catch((err) => error(`could not look for expired sessions in ${ledger.description}: ${(err as Error).message}; will retry`))
      .finally(() => (running = undefined))
    return running
  }

  const timer = setInterval(() => {
    options.onTick?.()
    void sweep()
  }, options.intervalMs ?? 5000).unref()
  return {
    async stop() {
      clearInterval(timer)
      stopped = true
      // A sweep records what it confirms: it must finish before the outbox closes, or its events arrive after.
      await Promise.all([running, ...checks])
    },
    sweep,
    check(sessionId) {
      if (stopped) return Promise.resolve()
      const checking = round(sessionId)
        .catch((err) => error(`could not check session for expiry: ${(err as Error).message}`))
        .finally(() => checks.delete(checking))
      checks.add(checking)
      return checking
    },
  }
}

import type { SessionLedger } from './session-ledger.js'
import type { LedgerEntry } from './session-ledger.js'

/** The part of an express-session store the sweep reads. */
export interface SessionReader {
  get(sessionId: string, callback: (err: unknown, session?: StoredSession | null) => void): void
}

/** A session as a store returns it. */
export interface StoredSession {
  readonly cookie?: { readonly expires?: string | Date | null }
  readonly passport?: { readonly user?: unknown }
}

export interface TimeoutWatchOptions {
  readonly ledger: SessionLedger
  /** The session store, once the middleware has seen it. */
  readonly store: () => SessionReader | undefined
  /** Called once per expired session, with the time it expired. */
  readonly expired: (entry: LedgerEntry) => void
  readonly error: (message: string) => void
  /** @defaultValue 5000 */
  readonly intervalMs?: number
}

/**
 * Reports sessions that expired. The ledger only knows when a session should expire; the store decides
 * (express-session refreshes the expiry at the end of each request, and a store may keep its own TTL),
 * so a due session is read back from the store first: gone means expired, present means the ledger
 * learns the new expiry. A store error leaves the session for the next sweep; nothing is guessed.
 * Returns a function that stops the sweep.
 */
export function watchTimeouts(options: TimeoutWatchOptions): { stop(): void; sweep(): Promise<void> } {
  const { ledger, expired, error } = options
  const checking = new Set<string>()

  const check = (store: SessionReader, sessionId: string, entry: LedgerEntry): Promise<void> =>
    new Promise((resolve) => {
      checking.add(sessionId)
      store.get(sessionId, (err, session) => {
        checking.delete(sessionId)
        resolve()
        if (err) return error(`could not read session for timeout check: ${(err as Error).message ?? String(err)}; will retry`)
        if (ledger.get(sessionId) !== entry) return // ended (logout, new login) while the store was read
        if (!session) {
          if (ledger.remove(sessionId)) expired(entry)
          return
        }
        if (session.passport?.user === undefined) {
          ledger.remove(sessionId) // no longer authenticated: ended, not timed out
          return
        }
        const expires = session.cookie?.expires ? new Date(session.cookie.expires).getTime() : Number.NaN
        ledger.touch(sessionId, Number.isFinite(expires) ? expires : Date.now() + 60_000)
      })
    })

  const sweep = async (): Promise<void> => {
    const store = options.store()
    if (!store) return
    const due = ledger.due(Date.now()).filter(([sessionId]) => !checking.has(sessionId))
    await Promise.all(due.map(([sessionId, entry]) => check(store, sessionId, entry)))
  }

  const timer = setInterval(() => void sweep(), options.intervalMs ?? 5000).unref()
  return { stop: () => clearInterval(timer), sweep }
}

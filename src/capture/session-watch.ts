import { createHash } from 'node:crypto'
import type { AuditEvent } from '../types.js'
import { detachedEvent } from './request-facts.js'
import type { UserFacts } from './request-facts.js'
import type { LedgerEntry, SessionLedger } from './session-ledger.js'
import { watchTimeouts } from './session-timeouts.js'
import type { SessionEnd, SessionReader } from './session-timeouts.js'

/** What the watch needs to know of a request's session. */
export interface WatchedRequest {
  readonly sessionID?: string
  readonly session?: { readonly cookie?: { readonly originalMaxAge?: number | null } }
  readonly headers: { readonly cookie?: string | undefined }
}

export interface SessionWatchOptions {
  readonly ledger: SessionLedger
  readonly record: (event: AuditEvent) => void
  /** The store, once the middleware has seen it (or the app passed it). */
  readonly store: () => SessionReader | undefined
  /** express-session's cookie name, to notice a request whose session the store no longer has. */
  readonly cookieName: string
  /** Sessions end after this long whatever their activity; 0 for no absolute lifetime. */
  readonly absoluteMs: number
  readonly sweepIntervalMs: number
  /** Runs on each sweep tick (taking over the spool of an instance that died). */
  readonly onTick?: () => void
  readonly warn: (key: string, message: string) => void
}

export interface SessionWatch {
  /** A login on this request: the old session (if authenticated) ends as replaced, the new one is watched. */
  beforeLogin(req: WatchedRequest): void
  loggedIn(req: WatchedRequest, facts: { user: UserFacts; auditSessionId: string; ip: string; userAgent: string }): void
  /**
   * A logout is about to happen on this request: its session ends as LOGOUT, not as anything else. The
   * function returned takes whether passport reported an error, and tells whether the user is out: when
   * not, the session is watched again as before.
   */
  loggingOut(req: WatchedRequest): (failed: boolean) => boolean
  /** An authenticated request: adopts a session this process has not seen (started elsewhere or earlier). */
  seen(req: WatchedRequest, facts: () => { user: UserFacts; auditSessionId: string; ip: string; userAgent: string }): void
  /** Every request with a session: notices a cookie whose session the store no longer had. */
  arrived(req: WatchedRequest): void
  /** The store is destroying a session (`req.session.destroy()`, or passport's regeneration). */
  destroyed(sessionId: string): void
  /** Sessions this process has put in the ledger and not seen end. */
  readonly sessions: () => number
  readonly sweep: () => Promise<void>
  readonly stop: () => Promise<void>
}

/**
 * The event id of an end the sweep found is derived from the session, how it ended and when, so that
 * an instance that takes over a claim from one killed after recording it produces the same id (and the
 * same time), which the procedures ignore.
 */
function endEventId(kind: string, auditSessionId: string, time: number): string {
  const hex = createHash('sha256').update(`${kind}\n${auditSessionId}\n${time}`).digest('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`
}

/** The session id a request's cookie named, unverified (express-session keeps the signature check to itself). */
function cookieSessionId(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue
    let value = part.slice(eq + 1).trim()
    try {
      value = decodeURIComponent(value)
    } catch {
      return undefined
    }
    if (!value.startsWith('s:')) return undefined
    const dot = value.lastIndexOf('.')
    return dot > 2 ? value.slice(2, dot) : undefined
  }
  return undefined
}

/** How long a session that ended here is kept from being adopted again: longer than any request takes. */
const ENDED_MEMORY_MS = 60_000
/** Ended sessions remembered at most (a burst of logouts); past it the oldest are forgotten. */
const MAX_ENDED = 10_000

/**
 * Keeps the session ledger in step with what happens to authenticated sessions, and turns each end into
 * the right event: LOGOUT is the passport hook's; an idle expiry is SESSIONTIMEOUT; the absolute lifetime,
 * a new login over the session, an explicit destroy, and a store dropping a session before its expiry
 * are SESSIONEND with the reason in the message.
 */
export function createSessionWatch(options: SessionWatchOptions): SessionWatch {
  const { ledger, record, warn } = options
  /** Sessions this process put in the ledger, with the expiry it last knew: spares a write per request. */
  const known = new Map<string, number>()
  /** Sessions whose logout is under way here, so their destruction is not reported again. */
  const loggingOut = new Set<string>()
  /** Sessions a login on this process is replacing. */
  const replacing = new Set<string>()
  /**
   * Sessions that ended here lately (a logout, a destroy), by when: a request that loaded one before it
   * ended (an app's poll while the user logs out) must not adopt it again, or its row would come back
   * and the session be reported as timed out after its LOGOUT. The database ledger's removal marker
   * does the same for other instances' requests; this spares the write, and serves the memory ledger.
   */
  const endedHere = new Map<string, number>()
  const endHere = (sessionId: string): void => {
    if (endedHere.size >= MAX_ENDED) endedHere.delete(endedHere.keys().next().value as string)
    endedHere.set(sessionId, Date.now())
  }
  const checking = new Set<string>()

  const failed = (what: string) => (err: unknown) => warn(`ledger:${what}`, `could not ${what} in the session ledger ${ledger.description}: ${(err as Error).message}; timeouts of these sessions may be missed`)

  const sessionEnd = (entry: LedgerEntry, time: number, reason: string): void =>
    record({ ...detachedEvent('SESSIONEND', time, entry.auditSessionId, entry.user, entry.ip, entry.userAgent), message: reason })

  const ended = (end: SessionEnd): void => {
    const { entry } = end
    if (end.kind === 'timeout') {
      record({ ...detachedEvent('SESSIONTIMEOUT', entry.expiresAt, entry.auditSessionId, entry.user, entry.ip, entry.userAgent), id: endEventId('SESSIONTIMEOUT', entry.auditSessionId, entry.expiresAt) })
      return
    }
    const time = end.kind === 'absolute' ? entry.absoluteExpiresAt ?? end.at : end.at
    const reason = end.kind === 'absolute' ? `absolute session lifetime of ${options.absoluteMs / 1000} s reached` : 'the session store no longer has the session, before its expiry'
    record({ ...detachedEvent('SESSIONEND', time, entry.auditSessionId, entry.user, entry.ip, entry.userAgent), message: reason, id: endEventId(`SESSIONEND ${end.kind}`, entry.auditSessionId, time) })
  }

  const timeouts = watchTimeouts({
    ledger,
    store: options.store,
    intervalMs: options.sweepIntervalMs,
    ended,
    error: (message) => warn(`sweep:${message}`, message),
    onTick() {
      const now = Date.now()
      // Sessions not seen for a whole lifetime are the ledger's business now; the cache forgets them.
      for (const [sessionId, expiresAt] of known) if (expiresAt < now) known.delete(sessionId)
      for (const [sessionId, at] of endedHere) if (at < now - ENDED_MEMORY_MS) endedHere.delete(sessionId)
      options.onTick?.()
    },
  })

  const expiresAt = (req: WatchedRequest): number | undefined => {
    const maxAge = req.session?.cookie?.originalMaxAge
    if (typeof maxAge === 'number' && maxAge > 0) return Date.now() + maxAge
    warn('no-max-age', 'express-session has no cookie.maxAge, so sessions never expire on the server and SESSIONTIMEOUT cannot be recorded; set cookie: { maxAge }')
    return undefined
  }

  const add = (req: WatchedRequest, facts: { user: UserFacts; auditSessionId: string; ip: string; userAgent: string }, replace: boolean): void => {
    const sessionId = req.sessionID
    const expiry = expiresAt(req)
    if (sessionId === undefined || expiry === undefined) return
    known.set(sessionId, expiry)
    const now = Date.now()
    const entry: LedgerEntry = { ...facts, loginTime: now, expiresAt: expiry, absoluteExpiresAt: options.absoluteMs > 0 ? now + options.absoluteMs : undefined }
    ledger.add(sessionId, entry, replace).catch(failed('add a session'))
  }

  /**
   * Out of the ledger once the logout has gone through, not when it starts: a failed one leaves the row
   * as it was, which a removal's marker (newer than the login) would refuse back.
   */
  const removeLoggedOut = (sessionId: string): void => void ledger.remove(sessionId).catch(failed('remove a session'))

  const end = (sessionId: string, reason: string): void => {
    known.delete(sessionId)
    endHere(sessionId)
    const time = Date.now()
    ledger.remove(sessionId).then((entry) => entry && sessionEnd(entry, time, reason), failed('remove a session'))
  }

  return {
    beforeLogin(req) {
      if (req.sessionID !== undefined && known.has(req.sessionID)) replacing.add(req.sessionID)
    },
    loggedIn(req, facts) {
      if (req.sessionID !== undefined) endedHere.delete(req.sessionID)
      add(req, facts, true)
    },
    loggingOut(req) {
      const sessionId = req.sessionID
      if (sessionId === undefined) return () => true
      // Unwatched here at once, not once passport answers: a poll meanwhile must find it ended (see arrived()).
      const expiry = known.get(sessionId)
      loggingOut.add(sessionId)
      known.delete(sessionId)
      endHere(sessionId)
      return (error) => {
        // passport saves the session without its user, then regenerates it, which destroys the old one
        // in the store (seen by the destroy hook, which took it out of the ledger) and gives the request
        // a new id even when destroy fails. Either sign means the save went through: the store no longer
        // has the user. The id covers a store authtrail has not hooked (a logout route mounted before
        // its middleware).
        const destroySeen = !loggingOut.delete(sessionId)
        if (!error || destroySeen || req.sessionID !== sessionId) {
          if (!destroySeen) removeLoggedOut(sessionId)
          return true
        }
        // The save failed: the store still holds the session with its user, who can go on using it.
        endedHere.delete(sessionId)
        if (expiry !== undefined) known.set(sessionId, expiry)
        return false
      }
    },
    seen(req, facts) {
      const sessionId = req.sessionID
      if (sessionId === undefined) return
      const last = known.get(sessionId)
      if (last !== undefined) known.set(sessionId, expiresAt(req) ?? last)
      else if (!endedHere.has(sessionId)) add(req, facts(), false)
    },
    destroyed(sessionId) {
      // A logout's save went through (passport regenerates only then): out of the ledger before the
      // store's destroy, so that a request under way with the old cookie finds the session ended, not lost.
      if (loggingOut.delete(sessionId)) return removeLoggedOut(sessionId)
      if (replacing.delete(sessionId)) return end(sessionId, 'a new login replaced the session')
      if (known.has(sessionId)) end(sessionId, 'the application destroyed the session')
    },
    arrived(req) {
      const previous = cookieSessionId(req.headers.cookie, options.cookieName)
      // A session that ended here lately (a logout) is no news; its row may still be on its way out.
      if (previous === undefined || previous === req.sessionID || endedHere.has(previous) || checking.has(previous) || checking.size >= 100) return
      // The cookie names a session the store did not return (expired, or dropped): say so now rather
      // than at the next sweep. The store is asked first, so a forged cookie reports nothing.
      checking.add(previous)
      void timeouts.check(previous).finally(() => checking.delete(previous))
    },
    sessions: () => known.size,
    sweep: timeouts.sweep,
    stop: timeouts.stop,
  }
}

import type { AuditEvent, AuditEventType, UserProfile } from '../types.js'
import { PROFILE_FIELDS } from '../describe/event-xml.js'
import type { Logger } from '../logger.js'
import { hookPassport } from './passport-hooks.js'
import type { PassportLike, StrategyLike } from './passport-hooks.js'
import { attemptIdentity, captureEvent, detachedEvent, NO_USER, storedIdentity, storedUserAgent } from './request-facts.js'
import type { FactLimits, RequestLike, UserFacts } from './request-facts.js'
import type { SessionLedger } from './session-ledger.js'
import { createSessionWatch } from './session-watch.js'
import { hookStoreDestroy } from './store-hooks.js'
import type { SessionStoreLike } from './store-hooks.js'
import type { SessionReader } from './session-timeouts.js'
import type { BruteForceGuard } from './brute-force.js'

/** How authtrail reads an app's user object. Each function gets what passport put in `req.user`. */
export interface UserDescription {
  /** Login name. @defaultValue `user.username ?? user.login ?? user.name ?? user.email ?? user.id` */
  readonly username?: (user: unknown) => string
  /** The app's id for the user (Showcase's `sid`). @defaultValue `user.id ?? user._id ?? ''` */
  readonly userId?: (user: unknown) => string
  /** `<sessioncontext>` profile fields (email, fullusername, ...). @defaultValue `{ email: user.email }` when it is a string */
  readonly profile?: (user: unknown) => UserProfile
}

/** A request as the middleware sees it after express-session and passport. */
interface AuditedRequest extends RequestLike {
  session?: { cookie?: { originalMaxAge?: number | null } } & Record<string, unknown>
  sessionStore?: SessionStoreLike & SessionReader
  body?: unknown
  [key: string]: unknown
  [key: symbol]: unknown
}

export interface CaptureOptions {
  readonly passport: PassportLike
  readonly hashSessionId: (sessionId: string) => string
  readonly limits: FactLimits
  readonly user: UserDescription
  /** Records an event; `durable` asks for it to reach the disk. Returns whether it was spooled. */
  readonly record: (event: AuditEvent, durable?: boolean) => boolean
  /** Refuse a login whose LOGIN cannot be made durable (security.logging.mode = strict). */
  readonly strict: boolean
  readonly logger: Logger
  readonly sweepIntervalMs: number
  /** Where authenticated sessions are watched for expiry: this process's memory or the audit database. */
  readonly ledger: SessionLedger
  /** The session store, when the app names it; otherwise the first request's `req.sessionStore`. */
  readonly store?: (SessionStoreLike & SessionReader) | undefined
  /** express-session's cookie name. */
  readonly sessionCookieName: string
  /** Absolute session lifetime in ms; 0 for none. */
  readonly absoluteSessionMs: number
  /** Runs on each sweep tick. */
  readonly onSweepTick?: () => void
  /** Counts failed logins and refuses locked-out attempts (security.logging.bruteforce.*). */
  readonly bruteforce?: BruteForceGuard | undefined
}

export interface Capture {
  /** Express middleware: mount after express-session, passport.initialize() and passport.session(). */
  readonly middleware: (req: unknown, res: unknown, next: (err?: unknown) => void) => void
  /** Authenticated sessions being watched for expiry. */
  readonly sessions: () => number
  /** Checks due sessions now instead of waiting for the timer (tests, shutdown). */
  readonly sweep: () => Promise<void>
  /** Removes the hooks at once; resolves once a sweep under way has finished. */
  readonly stop: () => Promise<void>
  /** The user passport put on a request (after `passport.session()`), undefined when nobody is signed in. */
  readonly userOf: (req: unknown) => unknown
  /** The login name authtrail records for a user object (the `username` option). */
  readonly usernameOf: (user: unknown) => string
  /** An event about a request's user and session that passport did not cause (the admin page's AUDIT_ACCESS). */
  readonly requestEvent: (type: AuditEventType, req: unknown) => AuditEvent
}

function field(value: unknown, name: string): unknown {
  return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[name] : undefined
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'bigint') return String(value)
  return undefined
}

function defaultUsername(user: unknown): string {
  if (typeof user === 'string') return user
  for (const name of ['username', 'login', 'name', 'email', 'id']) {
    const value = text(field(user, name))
    if (value !== undefined) return value
  }
  return ''
}

function defaultUserId(user: unknown): string {
  return text(field(user, 'id')) ?? text(field(user, '_id')) ?? ''
}

function defaultProfile(user: unknown): UserProfile {
  const email = text(field(user, 'email'))
  return email === undefined ? {} : { email }
}

/**
 * What the app's `username`/`userId` functions return, as text: a number id, or a BigInt that
 * JSON.stringify would refuse, must not keep an event out of the spool.
 */
function asText(value: unknown): string {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value)
}

/** The app's profile, kept to the `<sessioncontext>` fields, each as text (see {@link asText}). */
function profileOf(given: unknown): UserProfile {
  if (given === null || typeof given !== 'object') return {}
  const profile: Record<string, string> = {}
  for (const name of PROFILE_FIELDS) {
    const value = (given as Record<string, unknown>)[name]
    if (value !== undefined && value !== null && typeof value !== 'object' && typeof value !== 'function') profile[name] = String(value)
  }
  return profile
}

/**
 * Reads submitted form fields passport-local style (`user[name]` reads `body.user.name`). Field names
 * are split into paths once: they are read on every login attempt, and strategies use a handful.
 */
function fieldReader(): (req: AuditedRequest, name: string) => string | undefined {
  const paths = new Map<string, readonly string[]>()
  return (req, name) => {
    let path = paths.get(name)
    if (path === undefined) {
      path = name.split(/[[\]]+/).filter(Boolean)
      if (paths.size < 64) paths.set(name, path)
    }
    return submitted(req, path)
  }
}

function submitted(req: AuditedRequest, path: readonly string[]): string | undefined {
  for (const source of [req.body, req.query]) {
    let value: unknown = source
    for (const part of path) value = field(value, part)
    if (typeof value === 'string') return value
    if (value !== undefined && value !== null) return JSON.stringify(value)
  }
  return undefined
}

function failureMessage(outcome: { challenge?: unknown; error?: unknown }): string {
  if (outcome.error !== undefined) {
    const message = outcome.error instanceof Error ? outcome.error.message : String(outcome.error)
    return `Authentication error: ${message}`
  }
  const { challenge } = outcome
  if (typeof challenge === 'string' && challenge !== '') return challenge
  const message = field(challenge, 'message')
  // Spring Security's message, which is what Showcase procedures saw for a rejected password.
  return typeof message === 'string' && message !== '' ? message : 'Bad credentials'
}

/** What a locked-out client reads: the same whether or not the user exists. */
function refusalMessage(retryAfterSeconds: number): string {
  const minutes = Math.ceil(retryAfterSeconds / 60)
  return `Too many failed login attempts. Try again in ${retryAfterSeconds < 120 ? `${retryAfterSeconds} seconds` : `${minutes} minutes`}.`
}

/** LOGOUTERROR's message: fixed, since what the store answered is not fit for the audit trail. */
const LOGOUT_NOT_SAVED = 'the session store did not save the logout; the session is still signed in'

/** Login method as Showcase named it: FORM for a form login, otherwise the strategy's name. */
function loginMethod(strategyName: string): string {
  return strategyName === 'local' ? 'FORM' : strategyName.toUpperCase()
}

/**
 * Wires the capture side: passport hooks for LOGIN, LOGINERROR, LOGOUT and LOGOUTERROR, a ledger of
 * authenticated sessions and a sweep for SESSIONTIMEOUT, and the middleware that keeps the ledger current.
 */
export function createCapture(options: CaptureOptions): Capture {
  const { passport, hashSessionId, limits, record, logger } = options
  const username = options.user.username ?? defaultUsername
  const userId = options.user.userId ?? defaultUserId
  const profile = options.user.profile ?? defaultProfile
  // Per instance, never on the request object's prototype: two instances must not see each other's state.
  const LOGGED_IN_USER = Symbol('authtrail.user')
  /** The strategy checking this request's credentials, to find its password field at LOGIN. */
  const STRATEGY = Symbol('authtrail.strategy')
  const unhooks: Array<() => void> = []
  let store: (SessionStoreLike & SessionReader) | undefined = options.store
  const warned = new Set<string>()
  const warnOnce = (key: string, message: string): void => {
    if (warned.has(key)) return
    warned.add(key)
    logger.warn(message)
  }

  const submitted = fieldReader()
  const userFacts = (user: unknown): UserFacts =>
    user === undefined || user === null ? NO_USER : { username: asText(username(user)), userId: asText(userId(user)), profile: profileOf(profile(user)) }

  const watch = createSessionWatch({
    ledger: options.ledger,
    record: (event) => void record(event),
    store: () => store,
    cookieName: options.sessionCookieName,
    absoluteMs: options.absoluteSessionMs,
    sweepIntervalMs: options.sweepIntervalMs,
    ...(options.onSweepTick ? { onTick: options.onSweepTick } : {}),
    warn: warnOnce,
  })
  const hookStore = (target: SessionStoreLike & SessionReader): void => {
    unhooks.push(hookStoreDestroy(target, watch.destroyed))
  }
  if (store) hookStore(store)

  const strictRefusal = (): Error =>
    Object.assign(new Error('Login refused: the audit trail cannot record it right now (authtrail strict mode). Try again shortly.'), {
      status: 503,
      statusCode: 503,
      expose: true,
    })

  /** Records a LOGIN and watches its session; an Error (strict mode's refusal) keeps the user out. */
  const recordLogin = (req: AuditedRequest, user: unknown): Error | undefined => {
    req[LOGGED_IN_USER] = user
    const facts = userFacts(user)
    const auditSessionId = hashSessionId(req.sessionID ?? '')
    // A successful login's password is scrubbed too: a User-Agent or a query parameter may hold it.
    const password = submitted(req, (req[STRATEGY] as StrategyLike | undefined)?._passwordField ?? 'password')
    const captured = captureEvent('LOGIN', req, auditSessionId, facts, limits, password === undefined ? undefined : { method: '', message: '', password })
    const guard = options.bruteforce
    // Failures were counted by the name that was typed, which may not be the user object's (an email).
    const name = attemptIdentity(req, facts.username, limits, password).username
    const typed = req[STRATEGY] ? attemptIdentity(req, submitted(req, (req[STRATEGY] as StrategyLike)._usernameField ?? 'username') ?? '', limits, password).username : ''
    const priorFailures = guard ? Math.max(guard.succeeded(name), typed !== '' && typed !== name ? guard.succeeded(typed) : 0) : 0
    const event = priorFailures > 0 ? { ...captured, priorFailures } : captured
    if (!record(event, options.strict) && options.strict) return strictRefusal()
    watch.loggedIn(req, { user: facts, auditSessionId, ip: event.ip, userAgent: event.userAgent })
    return undefined
  }

  unhooks.push(
    hookPassport(
      passport,
      {
        beforeLogin(request) {
          watch.beforeLogin(request as AuditedRequest)
        },
        login(request, user) {
          try {
            return recordLogin(request as AuditedRequest, user)
          } catch (err) {
            // Strict mode's promise is no unrecorded login, whatever failed: the app's username() too.
            if (!options.strict) throw err
            logger.error(`recording a LOGIN failed, so the login is refused (strict mode): ${(err as Error).stack ?? String(err)}`)
            return strictRefusal()
          }
        },
        logout(request) {
          // Taken before passport clears the user and regenerates the session.
          const req = request as AuditedRequest
          const user = req[LOGGED_IN_USER] ?? req[passport._userProperty ?? 'user']
          // req.logout() with nobody signed in (a bot, a second click on "log out") ends no login. A
          // session whose user could not be loaded still ends one.
          const signedIn = (req.session?.passport as { user?: unknown } | undefined)?.user !== undefined
          if ((user === undefined || user === null) && !signedIn) return () => {}
          const facts = userFacts(user)
          const auditSessionId = hashSessionId(req.sessionID ?? '')
          const event = captureEvent('LOGOUT', req, auditSessionId, facts, limits)
          const done = watch.loggingOut(req)
          return (err) => {
            if (done(Boolean(err))) return void record(event)
            // Still signed in after asking to leave (a shared computer): on record, dated when passport
            // answered. The store's error stays out: it may hold a connection string or a password.
            record(captureEvent('LOGOUTERROR', req, auditSessionId, facts, limits, { method: '', message: LOGOUT_NOT_SAVED }))
          }
        },
        failure(request, strategyName, strategy: StrategyLike, outcome) {
          const req = request as AuditedRequest
          const password = submitted(req, strategy._passwordField ?? 'password')
          const tried = submitted(req, strategy._usernameField ?? 'username') ?? ''
          const event = captureEvent('LOGINERROR', req, hashSessionId(req.sessionID ?? ''), { username: tried, userId: '', profile: {} }, limits, {
            method: loginMethod(strategyName),
            message: failureMessage(outcome),
            password,
          })
          record(event)
          const identity = attemptIdentity(req, tried, limits, password)
          options.bruteforce?.failed(identity.username, identity.ip, event.time, event.username)
        },
        attempt(request, strategyName, strategy: StrategyLike) {
          const req = request as AuditedRequest
          req[STRATEGY] = strategy
          const guard = options.bruteforce
          if (!guard) return undefined
          const password = submitted(req, strategy._passwordField ?? 'password')
          const tried = submitted(req, strategy._usernameField ?? 'username') ?? ''
          // Every attempt is looked up, so only the two keys are worked out; the event only for a refusal.
          const { username: key, ip } = attemptIdentity(req, tried, limits, password)
          const lockout = guard.blocked(key, ip)
          if (!lockout) return undefined
          // The refusal is recorded too, and not counted: a locked-out client cannot extend its own lockout.
          const message = `Login refused: too many failed attempts for this ${lockout.scope === 'user' ? 'user' : 'address'}; locked out until ${new Date(lockout.until).toISOString()}`
          record(captureEvent('LOGINERROR', req, hashSessionId(req.sessionID ?? ''), { username: tried, userId: '', profile: {} }, limits, { method: loginMethod(strategyName), message, password }))
          const retryAfterSeconds = Math.max(1, Math.ceil((lockout.until - Date.now()) / 1000))
          return { status: 429, retryAfterSeconds, message: refusalMessage(retryAfterSeconds) }
        },
      },
      (err) => logger.error(`recording an event failed; the login goes on: ${(err as Error).stack ?? String(err)}`),
    ),
  )

  const middleware: Capture['middleware'] = (request, _res, next) => {
    const req = request as AuditedRequest
    if (req.session === undefined) {
      warnOnce('no-session', 'req.session is missing, so no event can be recorded. Did you mount express-session before authtrail\'s middleware?')
      return next()
    }
    if (req.sessionStore !== undefined && store === undefined) {
      store = req.sessionStore
      hookStore(store)
    }
    watch.arrived(req)
    // passport.initialize() sets _userProperty, so it is read per request rather than at start.
    const user = req[passport._userProperty ?? 'user']
    if (user !== undefined && user !== null) {
      req[LOGGED_IN_USER] = user
      // Also adopts sessions authenticated before this process started, or on another instance.
      watch.seen(req, () => {
        const facts = userFacts(user)
        // Stored as a LOGIN stores them: a forwarded address is whatever the client sent, of any length.
        const { username, ip } = storedIdentity(req, facts.username, limits, undefined)
        return { user: { ...facts, username }, auditSessionId: hashSessionId(req.sessionID ?? ''), ip, userAgent: storedUserAgent(req, limits, undefined) }
      })
    }
    next()
  }

  const userOf = (request: unknown): unknown => {
    const user = (request as AuditedRequest)[passport._userProperty ?? 'user']
    return user === null ? undefined : user
  }

  return {
    middleware,
    userOf,
    usernameOf: username,
    requestEvent: (type, request) => {
      const req = request as AuditedRequest
      return captureEvent(type, req, hashSessionId(req.sessionID ?? ''), userFacts(userOf(req)), limits)
    },
    sessions: watch.sessions,
    sweep: watch.sweep,
    async stop() {
      for (const unhook of unhooks.splice(0)) unhook()
      await watch.stop()
    },
  }
}

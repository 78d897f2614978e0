/**
 * Hooks into a passport instance, installed once per authtrail instance so that nothing is wrapped
 * per request:
 * - `passport._sm.logIn/logOut` (the session manager that `passport.initialize()` hands each request as
 *   `req._sessionManager`): every session login and logout goes through it, whether the app calls
 *   `req.login()` itself or `passport.authenticate()` does (passport ≥ 0.6).
 * - each strategy's `authenticate`, reached through `passport._strategy(name)`, which hands passport a
 *   view of the strategy with an audited `authenticate` (the strategy object is never changed): a
 *   strategy reports a failed login by calling `this.fail()`, which passport defines on a per-request
 *   copy of that view.
 * - `passport.authenticate/authorize`, which may be given strategy objects instead of names: they are
 *   handed the same kind of view. Routes made before authtrail hooked passport keep the bare object.
 * Logins with `{ session: false }` (API tokens checked on every request) are not session logins and are
 * not recorded as LOGIN.
 */

/** The parts of passport's session manager that authtrail wraps. */
export interface SessionManagerLike {
  logIn(req: unknown, user: unknown, options: unknown, cb: (err?: unknown) => void): void
  logOut(req: unknown, options: unknown, cb?: (err?: unknown) => void): void
}

/** The parts of a passport strategy that authtrail reads. */
export interface StrategyLike {
  name?: string
  authenticate(this: StrategyLike, req: unknown, options?: unknown): void
  fail?: (challenge?: unknown, status?: number) => void
  error?: (err: unknown) => void
  /** passport-local's configured form fields. */
  _usernameField?: string
  _passwordField?: string
}

/** The parts of a passport `Authenticator` that authtrail needs. */
export interface PassportLike {
  _sm?: SessionManagerLike
  _strategy(name: string): StrategyLike | undefined
  _userProperty?: string
  /** Session key passport stores its data under. @defaultValue "passport" */
  _key?: string
  /** The first argument of both is a strategy name, a strategy object (passport ≥ 0.6) or an array of either. */
  authenticate?(strategy: unknown, ...rest: unknown[]): unknown
  authorize?(strategy: unknown, ...rest: unknown[]): unknown
}

/** What the hooks report to; each call is already guarded so an audit failure never breaks a login. */
export interface PassportHandlers {
  /** Before passport logs a user in (and regenerates the session), with the old session still in place. */
  beforeLogin(req: unknown): void
  /**
   * After a successful session login; `req.sessionID` is the regenerated id. Returning an error refuses
   * the login after all (strict mode): passport's session data is removed and the error is passed on.
   */
  login(req: unknown, user: unknown): Error | undefined
  /**
   * Before passport logs out, with the session still in place; returns a function to call with passport's
   * outcome, an error included: a failed logout may still have signed the user out.
   */
  logout(req: unknown): (err: unknown) => void
  /**
   * A strategy rejected credentials (`fail`) or could not check them (`error`). A chain of strategies
   * (`passport.authenticate(['a', 'b'])`) reports one failure, once all of them have failed.
   */
  failure(req: unknown, strategyName: string, strategy: StrategyLike, outcome: { challenge?: unknown; error?: unknown }): void
  /**
   * Before a strategy checks credentials. Returning a refusal answers the request with it instead, and
   * the strategy never runs (a brute-force lockout).
   */
  attempt(req: unknown, strategyName: string, strategy: StrategyLike): Refusal | undefined
}

/** An attempt refused before the credentials are checked. */
export interface Refusal {
  readonly status: number
  readonly retryAfterSeconds: number
  /** Plain text for the client: no stack, nothing that tells whether the user exists. */
  readonly message: string
}

/**
 * Answers a refused attempt. passport's strategies get no `res`, but Express gives every request one as
 * `req.res`; without it the refusal goes to the app's error handler like any passport error.
 */
function refuse(req: unknown, strategy: StrategyLike, refusal: Refusal): void {
  const res = (req as { res?: { headersSent?: boolean; statusCode: number; setHeader(name: string, value: string): void; end(body: string): void } }).res
  if (res && !res.headersSent) {
    res.statusCode = refusal.status
    res.setHeader('Retry-After', String(refusal.retryAfterSeconds))
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.setHeader('Cache-Control', 'no-store')
    res.end(refusal.message)
    return
  }
  const err = Object.assign(new Error(refusal.message), { status: refusal.status, statusCode: refusal.status, expose: true, headers: { 'Retry-After': String(refusal.retryAfterSeconds) } })
  // Express's default handler prints err.stack outside production: let it show the message only.
  err.stack = refusal.message
  strategy.error?.(err)
}

/** A strategy's `fail()`, kept until its chain has ended. */
interface Failure {
  readonly name: string
  readonly strategy: StrategyLike
  readonly challenge: unknown
  readonly status: number | undefined
}

/** Strategies that take part in every request rather than in a login. */
const NOT_LOGIN_STRATEGIES = new Set(['session', 'anonymous'])

/**
 * Installs the hooks and returns a function that removes them. When another wrapper was installed on
 * top of authtrail's since, authtrail's is left in place but passes straight through.
 */
export function hookPassport(passport: PassportLike, handlers: PassportHandlers, onHandlerError: (err: unknown) => void): () => void {
  let active = true
  const guard = <A extends unknown[]>(fn: (...args: A) => void) => (...args: A): void => {
    if (!active) return
    try {
      fn(...args)
    } catch (err) {
      onHandlerError(err)
    }
  }
  const login = (req: unknown, user: unknown): Error | undefined => {
    if (!active) return undefined
    try {
      return handlers.login(req, user)
    } catch (err) {
      onHandlerError(err)
      return undefined
    }
  }
  const failure = guard(handlers.failure)
  const attempt = (req: unknown, name: string, strategy: StrategyLike): Refusal | undefined => {
    try {
      return handlers.attempt(req, name, strategy)
    } catch (err) {
      onHandlerError(err)
      return undefined
    }
  }
  const beforeLogin = guard(handlers.beforeLogin)
  const logout = (req: unknown): ((err: unknown) => void) => {
    if (!active) return () => {}
    try {
      return guard(handlers.logout(req))
    } catch (err) {
      onHandlerError(err)
      return () => {}
    }
  }

  const manager = passport._sm
  if (!manager || typeof manager.logIn !== 'function' || typeof manager.logOut !== 'function') {
    throw new Error('authtrail: options.passport has no session manager (passport._sm). Pass the passport instance the app uses (passport ≥ 0.6), e.g. authtrail({ passport })')
  }
  const originalLogIn = manager.logIn
  const originalLogOut = manager.logOut
  const auditedLogIn: SessionManagerLike['logIn'] = function (this: SessionManagerLike, req, user, options, cb) {
    if (typeof options === 'function') {
      cb = options as typeof cb
      options = {}
    }
    beforeLogin(req)
    return originalLogIn.call(this, req, user, options, function (err?: unknown) {
      if (err) return cb(err)
      const refusal = login(req, user)
      if (refusal) {
        const request = req as { session?: Record<string, { user?: unknown } | undefined>; [key: string]: unknown }
        delete request.session?.[passport._key ?? 'passport']?.user
        request[passport._userProperty ?? 'user'] = null
        return cb(refusal)
      }
      cb()
    })
  }
  const auditedLogOut: SessionManagerLike['logOut'] = function (this: SessionManagerLike, req, options, cb) {
    if (typeof options === 'function') {
      cb = options as typeof cb
      options = {}
    }
    const done = logout(req)
    return originalLogOut.call(this, req, options, function (err?: unknown) {
      done(err)
      cb?.(err)
    })
  }
  manager.logIn = auditedLogIn
  manager.logOut = auditedLogOut

  // Per instance, as the middleware's own request state is: another instance's chain is not this one's.
  const FAILURES = Symbol('authtrail.failures')
  /**
   * The last login strategy of each chain made through passport.authenticate() since authtrail hooked
   * it, by the options object passport hands each of the chain's strategies. Shared by routes with
   * different chains, an options object ends at each of their last strategies.
   */
  const chainEnds = new WeakMap<object, Set<string>>()
  // passport-local fails with 400 when its fields are missing: it checked nothing. A failed chain is
  // reported by the first strategy that did check credentials, so the name counted is the one typed.
  const chainFailed = (req: unknown, failures: readonly Failure[]): void => {
    const reported = failures.find((f) => f.status !== 400) ?? failures[0]
    if (reported) failure(req, reported.name, reported.strategy, { challenge: reported.challenge })
  }
  const audit = (strategy: StrategyLike, name: string): StrategyLike['authenticate'] =>
    function (this: StrategyLike, req, options) {
      if (active) {
        const request = req as Record<symbol, Map<unknown, Failure[]> | undefined>
        // The failures of the chain's earlier strategies, handed on by the fail() that started this
        // one; by options, so that an authenticate() a failure callback starts is a chain of its own.
        const handed = request[FAILURES]
        const failures = handed?.get(options) ?? []
        handed?.delete(options)
        // A chain made before authtrail hooked passport is not known: each of its failures counts.
        const ends = options !== null && typeof options === 'object' ? chainEnds.get(options) : undefined
        const last = ends === undefined || ends.has(name)
        const refusal = attempt(req, name, strategy)
        if (refusal) return refuse(req, this, refusal)
        // `this` is passport's per-request copy; its fail/error were set just before this call.
        const fail = this.fail
        const error = this.error
        if (fail) {
          this.fail = function (this: StrategyLike, challenge?: unknown, status?: number) {
            const numeric = typeof challenge === 'number'
            failures.push({ name, strategy, challenge: numeric ? undefined : challenge, status: numeric ? challenge : status })
            // The chain's last strategy: recorded before passport answers, as every event is. Before
            // it, passport's fail() starts the next strategy at once, which takes the list.
            if (last) chainFailed(req, failures)
            else (request[FAILURES] ??= new Map()).set(options, failures)
            return fail.apply(this, arguments as unknown as [unknown, number])
          }
        }
        if (error) {
          this.error = function (this: StrategyLike, err: unknown) {
            failure(req, name, strategy, { error: err })
            return error.call(this, err)
          }
        }
      }
      return strategy.authenticate.call(this, req, options)
    }
  // The strategy object itself is never changed: apps with separate passport instances may share one
  // (a module-level `new LocalStrategy(...)`), and a wrapper on it would record, and lock out, for
  // every app. Each instance inherits from it instead, through a view with its own `authenticate`.
  const views = new WeakMap<StrategyLike, Map<string, StrategyLike>>()
  const viewOf = (strategy: StrategyLike, name: string): StrategyLike => {
    let byName = views.get(strategy)
    if (!byName) views.set(strategy, (byName = new Map()))
    let view = byName.get(name)
    if (!view) byName.set(name, (view = Object.create(strategy, { authenticate: { value: audit(strategy, name), writable: true, configurable: true } }) as StrategyLike))
    return view
  }
  const originalStrategy = passport._strategy
  const auditedStrategy = function (this: PassportLike, name: string): StrategyLike | undefined {
    const strategy = originalStrategy.call(this, name)
    return active && strategy && !NOT_LOGIN_STRATEGIES.has(name) ? viewOf(strategy, name) : strategy
  }
  passport._strategy = auditedStrategy
  const isStrategy = (layer: unknown): layer is StrategyLike => typeof (layer as Partial<StrategyLike> | null)?.authenticate === 'function'
  /** A chain's layer by the name its audited view goes by: a strategy's name, or a strategy object's. */
  const layerName = (layer: unknown): string => (isStrategy(layer) ? layer.name ?? 'unknown' : String(layer))
  const asView = (layer: unknown): unknown => (isStrategy(layer) && !NOT_LOGIN_STRATEGIES.has(layerName(layer)) ? viewOf(layer, layerName(layer)) : layer)
  // passport uses a strategy object it is given as it is, never through _strategy(); this is called
  // once per route, when the app makes it, not per request.
  const unhookMethods = (['authenticate', 'authorize'] as const).map((method) => {
    const had = Object.prototype.hasOwnProperty.call(passport, method)
    const original = passport[method]
    if (typeof original !== 'function') return () => {}
    const audited = function (this: PassportLike, strategy: unknown, options?: unknown, callback?: unknown): unknown {
      if (!active) return original.call(this, strategy, options, callback)
      // passport's own signature: (strategy, callback) leaves the options out.
      if (typeof options === 'function') [options, callback] = [undefined, options]
      const given = (options ?? {}) as object
      const logins = (Array.isArray(strategy) ? strategy : [strategy]).map(layerName).filter((name) => !NOT_LOGIN_STRATEGIES.has(name))
      if (logins.length > 0) {
        const ends = chainEnds.get(given) ?? new Set<string>()
        chainEnds.set(given, ends.add(logins.at(-1)!))
      }
      return original.call(this, Array.isArray(strategy) ? strategy.map(asView) : asView(strategy), given, callback)
    }
    passport[method] = audited
    return () => {
      if (passport[method] !== audited) return
      if (had) passport[method] = original
      else delete passport[method]
    }
  })

  return () => {
    active = false
    for (const unhook of unhookMethods) unhook()
    if (manager.logIn === auditedLogIn) manager.logIn = originalLogIn
    if (manager.logOut === auditedLogOut) manager.logOut = originalLogOut
    if (passport._strategy === auditedStrategy) passport._strategy = originalStrategy
  }
}

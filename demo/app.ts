/**
 * The demo: an ordinary Express app with express-session and passport-local, plus authtrail. It takes
 * the express module as a parameter so the tests run it on Express 4 and 5.
 */
import { randomBytes } from 'node:crypto'
import session from 'express-session'
import passportModule from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import { authtrail } from '../src/index.js'
import type { Authtrail, AuthtrailOptions, Logger } from '../src/index.js'

/** DEMO ONLY: hard-coded users and passwords, never do this in an application. */
const DEMO_USERS: ReadonlyArray<{ id: string; username: string; password: string; email: string; admin: boolean }> = [
  { id: '1', username: 'alice', password: 'wonderland', email: 'alice@example.org', admin: false },
  { id: '2', username: 'admin', password: 'change-me', email: 'admin@example.org', admin: true },
]

export interface DemoOptions {
  /** The express module (default export of `express`), version 4 or 5. */
  readonly express: any
  /** Properties file; an empty security.logging.proc runs the same app without auditing. */
  readonly config: string
  readonly cwd?: string
  readonly sessionTimeoutSeconds: number
  readonly trustProxy?: boolean | string
  readonly sweepIntervalMs?: number
  readonly logger?: Logger
  /** Passed to authtrail (tests: a spool that fails on demand). */
  readonly openSpool?: AuthtrailOptions['openSpool']
  /** express-session store. @defaultValue a new MemoryStore */
  readonly store?: session.Store
  /** Cookie signing secret; instances sharing a store must share it. @defaultValue random per start */
  readonly sessionSecret?: string
}

export interface Demo {
  readonly app: any
  readonly audit: Authtrail
  /** The session store, so tests can inspect or expire sessions. */
  readonly store: session.Store
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function page(body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>authtrail demo</title>
<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:3rem auto}label{display:block;margin:.5rem 0}
.note{color:#555;font-size:.9rem}.error{color:#b00}</style></head><body><h1>authtrail demo</h1>${body}</body></html>`
}

export async function createDemo(options: DemoOptions): Promise<Demo> {
  const express = options.express
  // A Passport instance of its own, so two demos in one process (tests) do not share strategies.
  const passport = new (passportModule as any).Passport() as typeof passportModule
  passport.use(
    new LocalStrategy((username, password, done) => {
      const user = DEMO_USERS.find((u) => u.username === username)
      if (!user) return done(null, false, { message: 'Unknown user.' })
      if (user.password !== password) return done(null, false, { message: 'Incorrect password.' })
      return done(null, { id: user.id, username: user.username, email: user.email, admin: user.admin })
    }),
  )
  passport.serializeUser((user: any, done) => done(null, user.id))
  passport.deserializeUser((id: string, done) => {
    const user = DEMO_USERS.find((u) => u.id === id)
    done(null, user ? { id: user.id, username: user.username, email: user.email, admin: user.admin } : false)
  })

  const store = options.store ?? new session.MemoryStore()
  const audit = await authtrail({
    passport: passport as any,
    config: options.config,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(options.sweepIntervalMs !== undefined ? { sweepIntervalMs: options.sweepIntervalMs } : {}),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
    ...(options.openSpool !== undefined ? { openSpool: options.openSpool } : {}),
    sessionStore: store as any,
    // The audit page at /admin/audit: the demo's admin user only.
    isAdmin: (user) => user.admin === true,
  })
  const app = express()
  if (options.trustProxy !== undefined) app.set('trust proxy', options.trustProxy)
  app.disable('x-powered-by')
  app.use(express.urlencoded({ extended: false, limit: '16kb' }))
  app.use(
    session({
      store,
      // Without a given secret, a fresh one per start: demo sessions then do not survive a restart.
      secret: options.sessionSecret ?? randomBytes(32).toString('hex'),
      resave: false,
      saveUninitialized: false,
      rolling: true,
      cookie: { httpOnly: true, sameSite: 'lax', maxAge: options.sessionTimeoutSeconds * 1000 },
    }),
  )
  app.use(passport.initialize())
  app.use(passport.session())
  app.use(audit.middleware)

  app.get('/', (req: any, res: any) => {
    if (req.user) {
      return res.send(page(`<p>Signed in as <strong>${escapeHtml(req.user.username)}</strong>.</p>
<form method="post" action="/logout"><button type="submit">Log out</button></form>
<p><a href="/logout">Log out (link)</a></p>
<p class="note">Idle for ${options.sessionTimeoutSeconds} s and the session times out (SESSIONTIMEOUT).</p>
${req.user.admin ? '<p><a href="/admin/audit">Audit trail</a></p>' : ''}`))
    }
    const error = req.query.error ? '<p class="error">Invalid username or password.</p>' : ''
    res.send(page(`${error}<form method="post" action="/login">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button></form>
<p class="note">Demo users (demo only): alice / wonderland, admin / change-me.</p>`))
  })
  app.post('/login', passport.authenticate('local', { successRedirect: '/', failureRedirect: '/?error=1' }))
  const logout = (req: any, res: any, next: any) => req.logout((err: unknown) => (err ? next(err) : res.redirect('/')))
  app.post('/logout', logout)
  app.get('/logout', logout)

  // Delivery state for operators: queue depth, spool, sink errors, oldest pending event, parked events.
  app.get('/admin/health', (req: any, res: any) => {
    if (!req.user?.admin) return res.status(403).json({ error: 'admins only' })
    const metrics = audit.metrics()
    const degraded = metrics.parked > 0 || (metrics.queued > 0 && metrics.lastError !== undefined)
    res.set('cache-control', 'no-store').json({
      status: !audit.enabled ? 'off' : degraded ? 'degraded' : 'ok',
      ...metrics,
      oldestPendingTime: metrics.oldestPendingTime === undefined ? null : new Date(metrics.oldestPendingTime).toISOString(),
      parkedEvents: audit.parked().map((p) => ({ id: p.event.id, type: p.event.type, time: new Date(p.event.time).toISOString(), attempts: p.attempts, error: p.error })),
    })
  })

  // Never a stack trace to the browser.
  app.use((err: any, _req: any, res: any, _next: any) => {
    if (err?.status === 503) {
      // authtrail's strict mode refused a login it could not record durably.
      return res.status(503).set('retry-after', '30').send(page(`<p class="error">${escapeHtml(err.message)}</p>`))
    }
    options.logger?.error(`demo: ${err?.stack ?? String(err)}`)
    res.status(500).send(page('<p class="error">Something went wrong.</p>'))
  })
  return { app, audit, store }
}

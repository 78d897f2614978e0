import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import session from 'express-session'
import passportModule from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import { authtrail } from '../../src/index.js'
import type { AuditEventType } from '../../src/index.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { eventually, sleep } from '../helpers/eventually.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'

const PASSWORD = 'logout-failure-secret-7f3a'
/** What a LOGOUTERROR says, whatever the store answered: its error may name a host, a user or a password. */
const LOGOUT_NOT_SAVED = 'the session store did not save the logout; the session is still signed in'
const parser = new XMLParser({ parseTagValue: false, processEntities: true, trimValues: false })

/** passport's logout makes two store calls: `set` (its save) and `destroy` (its regenerate). */
type StoreCall = 'set' | 'destroy'

/** A MemoryStore whose `set` or `destroy` fails while told to, as a store whose database went away. */
class FailingStore extends session.MemoryStore {
  failing: StoreCall | undefined

  override set(sid: string, sess: session.SessionData, callback?: (err?: unknown) => void): void {
    if (this.failing === 'set') return void setImmediate(() => callback?.(new Error(`session store unavailable (set): postgres://sessions:${PASSWORD}@db.internal/sessions`)))
    super.set(sid, sess, callback)
  }

  override destroy(sid: string, callback?: (err?: unknown) => void): void {
    if (this.failing === 'destroy') return void setImmediate(() => callback?.(new Error('session store unavailable (destroy)')))
    super.destroy(sid, callback)
  }
}

/**
 * `routesFirst` mounts the routes before authtrail's middleware, which then never sees the store to hook
 * it; `properties` are added to the project's.
 */
async function appWithFailingStore({ routesFirst = false, properties = {} as Record<string, string> } = {}) {
  const project = tempProject({ 'security.logging.session.sweep.ms': '100', 'security.logging.sessionid': 'raw', ...properties })
  const logger = memoryLogger()
  const passport = new (passportModule as any).Passport()
  passport.use(new LocalStrategy((username, password, done) => done(null, username === 'alice' && password === PASSWORD ? { username } : false)))
  passport.serializeUser((user: any, done: any) => done(null, user.username))
  passport.deserializeUser((username: string, done: any) => done(null, { username }))
  const audit = await authtrail({ passport, config: project.config, cwd: project.dir, logger })
  const store = new FailingStore()
  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(session({ store, secret: 'test', resave: false, saveUninitialized: false, cookie: { maxAge: 1500 } }))
  app.use(passport.initialize())
  app.use(passport.session())
  if (!routesFirst) app.use(audit.middleware)
  app.post('/login', passport.authenticate('local'), (_req, res) => res.send('ok'))
  app.post('/logout', (req: any, res, next) => req.logout((err: unknown) => (err ? next(err) : res.send('bye'))))
  app.get('/me', (req: any, res) => res.send(req.user ? req.user.username : 'nobody'))
  if (routesFirst) app.use(audit.middleware)
  app.use((_err: unknown, _req: unknown, res: express.Response, _next: unknown) => void res.status(500).send('logout failed'))
  const server = await listen(app)
  const rows = async (types?: AuditEventType[]) => {
    await audit.flush()
    return (await audit.query({ limit: 100, ...(types ? { types } : {}) })).reverse()
  }
  /** Logs out with one of the store's calls failing, then lets the store work again. */
  const failedLogout = async (browser: ReturnType<typeof client>, call: StoreCall) => {
    store.failing = call
    try {
      return await browser.post('/logout')
    } finally {
      store.failing = undefined
    }
  }
  return { audit, logger, url: server.url, rows, failedLogout, close: async () => { await server.close(); await audit.close(); project.remove() } }
}

describe('a logout whose session store fails', () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop()
  })
  /** An app, and a browser signed in to it as alice, with the session id of that login. */
  const signedIn = async (options?: Parameters<typeof appWithFailingStore>[0]) => {
    const app = await appWithFailingStore(options)
    stops.push(app.close)
    const browser = client(app.url)
    expect((await browser.post('/login', { username: 'alice', password: PASSWORD })).text).toBe('ok')
    return { app, browser, sessionId: browser.sessionId()! }
  }

  it('records no LOGOUT when the save failed, and the session, still signed in, is reported when it times out', async () => {
    const { app, browser, sessionId } = await signedIn()
    expect((await app.failedLogout(browser, 'set')).status).toBe(500)
    expect(browser.sessionId()).toBe(sessionId)
    expect((await browser.get('/me')).text).toBe('alice')
    expect(app.audit.metrics().sessions).toBe(1)
    expect(await app.rows(['LOGOUT'])).toEqual([])
    // Past the session's 1.5 s lifetime: nothing but the store's expiry ends it now.
    const timeout = await eventually(async () => {
      const found = (await app.rows(['SESSIONTIMEOUT'])).filter((row) => row.session_id === sessionId)
      expect(found).toHaveLength(1)
      return found[0]!
    }, 5000)
    expect(timeout.username).toBe('alice')
    expect((await app.rows()).map((row) => row.type)).toEqual(['LOGIN', 'LOGOUTERROR', 'SESSIONTIMEOUT'])
  })

  it('records one LOGOUTERROR when the save failed, with the user, session and address, and a fixed message instead of the store\'s', async () => {
    const { app, browser, sessionId } = await signedIn()
    expect((await app.failedLogout(browser, 'set')).status).toBe(500)
    const [login] = await app.rows(['LOGIN'])
    const errors = await app.rows(['LOGOUTERROR'])
    expect(errors.map((row) => [row.username, row.session_id, row.ip])).toEqual([['alice', sessionId, login!.ip]])
    expect(login!.session_id).toBe(sessionId)
    const [error] = errors
    for (const xml of [error!.data, error!.session_context]) expect(XMLValidator.validate(xml)).toBe(true)
    const { data } = parser.parse(error!.data)
    expect(data).toMatchObject({ SecurityLastExeption: LOGOUT_NOT_SAVED, UserName: 'alice', IP: login!.ip, HttpSessionId: sessionId })
    expect(data.errorData).toEqual({ password: '', Message: LOGOUT_NOT_SAVED, domain: '', name: '', username: 'alice' })
    // Still signed in, so the session context names her, as for any other event of her session.
    expect(parser.parse(error!.session_context).sessioncontext).toMatchObject({ username: 'alice', login: 'alice', sessionid: sessionId })
    const stored = JSON.stringify(await app.rows())
    expect(stored).not.toContain('session store unavailable')
    expect(stored).not.toContain('db.internal')
  })

  it('does not count a LOGOUTERROR as a failed login: no failure outcome, no lockout, the next login let in', async () => {
    const { app, browser } = await signedIn({ properties: { 'security.logging.bruteforce.user.attempts': '1', 'security.logging.bruteforce.ip.attempts': '1', 'security.logging.bruteforce.block': 'true' } })
    await app.failedLogout(browser, 'set')
    await app.failedLogout(browser, 'set')
    expect((await browser.post('/login', { username: 'alice', password: PASSWORD })).text).toBe('ok')
    expect(await app.rows(['LOGOUTERROR'])).toHaveLength(2)
    expect(await app.audit.query({ outcome: 'failure' })).toEqual([])
    expect(await app.rows(['LOCKOUT'])).toEqual([])
  })

  it('records the LOGOUT of a later logout that goes through, once', async () => {
    const { app, browser, sessionId } = await signedIn()
    expect((await app.failedLogout(browser, 'set')).status).toBe(500)
    expect((await browser.post('/logout')).text).toBe('bye')
    expect((await browser.get('/me')).text).toBe('nobody')
    expect(app.audit.metrics().sessions).toBe(0)
    await sleep(2000)
    await app.audit.sweep()
    const ends = (await app.rows(['LOGOUTERROR', 'LOGOUT', 'SESSIONTIMEOUT', 'SESSIONEND'])).filter((row) => row.session_id === sessionId)
    expect(ends.map((row) => [row.type, row.username])).toEqual([['LOGOUTERROR', 'alice'], ['LOGOUT', 'alice']])
  })

  it('records a login over a session whose logout failed as replacing it', async () => {
    const { app, browser, sessionId } = await signedIn()
    await app.failedLogout(browser, 'set')
    expect((await browser.post('/login', { username: 'alice', password: PASSWORD })).text).toBe('ok')
    const ends = (await app.rows(['LOGOUT', 'SESSIONTIMEOUT', 'SESSIONEND'])).filter((row) => row.session_id === sessionId)
    expect(ends.map((row) => [row.type, row.username])).toEqual([['SESSIONEND', 'alice']])
  })

  it('records LOGOUT when the save went through and the regenerate failed: the user is out', async () => {
    const { app, browser, sessionId } = await signedIn()
    expect((await app.failedLogout(browser, 'destroy')).status).toBe(500)
    expect((await browser.get('/me')).text).toBe('nobody')
    expect(app.audit.metrics().sessions).toBe(0)
    const [logout] = (await app.rows(['LOGOUT'])).filter((row) => row.session_id === sessionId)
    expect(logout?.username).toBe('alice')
    expect(await app.rows(['LOGOUTERROR'])).toEqual([])
    // The old session stays in the store, without its user, until it expires: no timeout of a signed-out session.
    await sleep(2000)
    await app.audit.sweep()
    expect((await app.rows()).map((row) => row.type)).toEqual(['LOGIN', 'LOGOUT'])
  })

  it('records LOGOUT when the regenerate failed on a store authtrail never hooked', async () => {
    const { app, browser, sessionId } = await signedIn({ routesFirst: true })
    expect((await app.failedLogout(browser, 'destroy')).status).toBe(500)
    expect((await browser.get('/me')).text).toBe('nobody')
    // Only the session: passport empties req.user before logging out, and the middleware that keeps it ran for no route here.
    expect((await app.rows(['LOGOUT'])).map((row) => row.session_id)).toEqual([sessionId])
    expect(await app.rows(['LOGOUTERROR'])).toEqual([])
  })

  it('keeps logins working after failed logouts, and no password in the audit table or the log', async () => {
    const app = await appWithFailingStore()
    stops.push(app.close)
    for (const call of ['set', 'destroy'] as const) {
      const browser = client(app.url)
      expect((await browser.post('/login', { username: 'alice', password: PASSWORD })).text).toBe('ok')
      await app.failedLogout(browser, call)
      expect((await browser.post('/login', { username: 'alice', password: PASSWORD })).text).toBe('ok')
      expect((await browser.get('/me')).text).toBe('alice')
    }
    const all = await app.rows()
    expect(all.filter((row) => row.type === 'LOGIN')).toHaveLength(4)
    expect(JSON.stringify(all)).not.toContain(PASSWORD)
    expect(app.logger.lines.join('\n')).not.toContain(PASSWORD)
  })
})

import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import session from 'express-session'
import passportModule from 'passport'
import { authtrail } from '../../src/index.js'
import type { Authtrail } from '../../src/index.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { DATABASES } from '../helpers/databases.js'
import { sleep } from '../helpers/eventually.js'
import { memoryLogger, TEST_SESSION_KEY, tempProject } from '../helpers/temp-project.js'

/** An app whose user lookup is slow on /poll, as a database lookup is, so a poll can straddle a logout. */
async function slowPollApp(properties: Record<string, string>, store?: session.Store) {
  const project = tempProject({ ...properties, 'security.logging.session.sweep.ms': '100' })
  const passport = new (passportModule as any).Passport()
  passport.serializeUser((user: any, done: any) => done(null, user.name))
  passport.deserializeUser((req: any, name: string, done: any) => setTimeout(() => done(null, { name }), req.path === '/poll' ? 80 : 0))
  const audit = await authtrail({ passport, config: project.config, cwd: project.dir, logger: memoryLogger(), sessionKey: TEST_SESSION_KEY, ...(store ? { sessionStore: store as any } : {}) })
  const app = express()
  app.use(session({ secret: 'test', resave: false, saveUninitialized: false, cookie: { maxAge: 1500 }, ...(store ? { store } : {}) }))
  app.use(passport.initialize())
  app.use(passport.session())
  app.use(audit.middleware)
  app.post('/login', (req: any, res, next) => req.login({ name: 'zoe' }, (err: unknown) => (err ? next(err) : res.send('ok'))))
  app.post('/logout', (req: any, res, next) => req.logout((err: unknown) => (err ? next(err) : res.send('bye'))))
  app.get('/poll', (req: any, res) => res.send(req.user ? 'user' : 'nobody'))
  return { app, audit, close: async () => { await audit.close(); project.remove() } }
}

async function appWithSlowPoll() {
  const made = await slowPollApp({})
  const server = await listen(made.app)
  return { audit: made.audit, url: server.url, close: async () => { await server.close(); await made.close() } }
}

/** Past the sessions' 1.5 s lifetime and several sweeps of every instance: what the audit table then holds. */
async function typesAfterExpiry(...audits: Authtrail[]): Promise<string[]> {
  await sleep(2500)
  for (const audit of audits) await audit.sweep()
  for (const audit of audits) await audit.flush()
  return (await audits[0]!.query({ limit: 10 })).map((row) => row.type).reverse()
}

describe('a request under way while its session logs out', () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop()
  })

  it('does not bring the session back: no SESSIONTIMEOUT follows the LOGOUT', async () => {
    const app = await appWithSlowPoll()
    stops.push(app.close)
    const browser = client(app.url)
    await browser.post('/login')
    // The poll loads the session, then waits for its user while the logout runs.
    const [poll, logout] = await Promise.all([browser.get('/poll'), sleep(10).then(() => browser.post('/logout'))])
    expect([poll.text, logout.text]).toEqual(['user', 'bye'])
    expect(app.audit.metrics().sessions).toBe(0)
    expect(await typesAfterExpiry(app.audit)).toEqual(['LOGIN', 'LOGOUT'])
  })

  it('reports nothing more for the cookie of the session it logged out, sent again at once', async () => {
    const app = await appWithSlowPoll()
    stops.push(app.close)
    const browser = client(app.url)
    await browser.post('/login')
    // No new cookie comes with the logout (nothing saved in the new session): the browser's next
    // requests carry the old one, of a session the store no longer has, while its row may be on its way out.
    await browser.post('/logout')
    await Promise.all(Array.from({ length: 5 }, () => browser.get('/poll')))
    expect(await typesAfterExpiry(app.audit)).toEqual(['LOGIN', 'LOGOUT'])
  })
})

// Two instances need a database both reach: the embedded store has one holder at a time.
for (const db of DATABASES.filter((d) => d.name !== 'pglite')) {
  describe.skipIf(db.unavailable !== undefined)(`a request under way on another instance while its session logs out, in ${db.name}`, () => {
    const stops: Array<() => Promise<void>> = []
    afterEach(async () => {
      for (const stop of stops.splice(0).reverse()) await stop()
    })

    it('does not bring the session back into the shared ledger: no SESSIONTIMEOUT follows the LOGOUT', async () => {
      const namespace = await db.create()
      stops.push(() => namespace.teardown())
      const store = new session.MemoryStore()
      const one = await slowPollApp(namespace.properties, store)
      stops.push(one.close)
      const two = await slowPollApp(namespace.properties, store)
      stops.push(two.close)
      // A load balancer in front of both: the header picks the instance, the browser keeps one cookie jar.
      const front = express()
      front.use((req, res, next) => (req.headers['x-instance'] === 'two' ? two.app : one.app)(req, res, next))
      const server = await listen(front)
      stops.push(server.close)
      const browser = client(server.url)
      await browser.post('/login')
      // The poll goes to the instance that has not seen the session yet, and adopts it after the logout.
      const [poll, logout] = await Promise.all([browser.get('/poll', { 'x-instance': 'two' }), sleep(10).then(() => browser.post('/logout'))])
      expect([poll.text, logout.text]).toEqual(['user', 'bye'])
      expect(await typesAfterExpiry(one.audit, two.audit)).toEqual(['LOGIN', 'LOGOUT'])
    })
  })
}

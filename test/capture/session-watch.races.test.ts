import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import session from 'express-session'
import passportModule from 'passport'
import { authtrail } from '../../src/index.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { sleep } from '../helpers/eventually.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'

/** An app whose user lookup is slow on /poll, as a database lookup is, so a poll can straddle a logout. */
async function appWithSlowPoll() {
  const project = tempProject({ 'security.logging.session.sweep.ms': '100' })
  const passport = new (passportModule as any).Passport()
  passport.serializeUser((user: any, done: any) => done(null, user.name))
  passport.deserializeUser((req: any, name: string, done: any) => setTimeout(() => done(null, { name }), req.path === '/poll' ? 80 : 0))
  const audit = await authtrail({ passport, config: project.config, cwd: project.dir, logger: memoryLogger() })
  const app = express()
  app.use(session({ secret: 'test', resave: false, saveUninitialized: false, cookie: { maxAge: 1500 } }))
  app.use(passport.initialize())
  app.use(passport.session())
  app.use(audit.middleware)
  app.post('/login', (req: any, res, next) => req.login({ name: 'zoe' }, (err: unknown) => (err ? next(err) : res.send('ok'))))
  app.post('/logout', (req: any, res, next) => req.logout((err: unknown) => (err ? next(err) : res.send('bye'))))
  app.get('/poll', (req: any, res) => res.send(req.user ? 'user' : 'nobody'))
  const server = await listen(app)
  return { audit, url: server.url, close: async () => { await server.close(); await audit.close(); project.remove() } }
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
    // Past the session's 1.5 s lifetime and several sweeps.
    await sleep(2500)
    await app.audit.sweep()
    await app.audit.flush()
    expect((await app.audit.query({ limit: 10 })).map((row) => row.type).reverse()).toEqual(['LOGIN', 'LOGOUT'])
  })
})

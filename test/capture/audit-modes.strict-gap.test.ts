import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import session from 'express-session'
import passportModule from 'passport'
import { XMLParser } from 'fast-xml-parser'
import { createDemo } from '../../demo/app.js'
import { openSpool } from '../../src/deliver/spool.js'
import { authtrail } from '../../src/index.js'
import type { Spool } from '../../src/index.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'

/** A real spool whose disk can be made "full" on demand. */
function fullDisk() {
  const state = { full: false }
  const open = (dir: string): Spool => {
    const spool = openSpool(dir)
    return {
      ...spool,
      append(event, sync) {
        if (state.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })
        return spool.append(event, sync)
      },
    }
  }
  return { state, open }
}

async function start(mode: 'fail-open' | 'strict') {
  const project = tempProject({ 'security.logging.mode': mode })
  const disk = fullDisk()
  const logger = memoryLogger()
  const demo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 60, logger, openSpool: disk.open })
  const server = await listen(demo.app)
  const rows = async () => {
    await demo.audit.flush()
    return (await demo.audit.query({ limit: 100 })).reverse()
  }
  return { project, disk, logger, demo, server, rows, stop: async () => { await server.close(); await demo.audit.close(); project.remove() } }
}

const parser = new XMLParser({ parseTagValue: false })

describe('audit modes when the spool cannot be written', () => {
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop()
  })

  it('strict mode refuses a login it cannot record durably with a clear 503, and signs nobody in', async () => {
    const app = await start('strict')
    stops.push(app.stop)
    app.disk.state.full = true
    const browser = client(app.server.url)
    const refused = await browser.post('/login', { username: 'alice', password: 'wonderland' })
    expect(refused.status).toBe(503)
    expect(refused.text).toContain('the audit trail cannot record it')
    expect(refused.text).not.toMatch(/\n\s+at /)
    // The same browser, with whatever cookie the refused login left: nobody is signed in.
    const home = await browser.get('/')
    expect(home.text).toContain('Log in')
    expect(home.text).not.toContain('Signed in as')
    // Failed logins are still recorded (from memory): strict mode refuses only what it cannot prove.
    await client(app.server.url).post('/login', { username: 'mallory', password: 'guess' })
    app.disk.state.full = false
    const ok = await client(app.server.url).post('/login', { username: 'alice', password: 'wonderland' })
    expect(ok.location).toBe('/')
    const types = (await app.rows()).map((r) => `${r.type} ${r.username}`)
    expect(types.filter((t) => t === 'LOGIN alice')).toHaveLength(1)
    expect(types).toContain('LOGINERROR mallory')
  })

  it('strict mode refuses a login whose LOGIN cannot be made at all (the app\'s username() throws); fail-open lets it in', async () => {
    for (const mode of ['strict', 'fail-open'] as const) {
      const project = tempProject({ 'security.logging.mode': mode })
      const logger = memoryLogger()
      const passport = new (passportModule as any).Passport()
      passport.serializeUser((user: any, done: any) => done(null, user.name))
      passport.deserializeUser((name: string, done: any) => done(null, { name }))
      const audit = await authtrail({ passport, config: project.config, cwd: project.dir, logger, username: () => { throw new Error('no name for this user') } })
      const app = express()
      app.use(session({ secret: 'test', resave: false, saveUninitialized: false }))
      app.use(passport.initialize())
      app.use(passport.session())
      app.use(audit.middleware)
      app.post('/login', (req: any, res, next) => req.login({ name: 'alice' }, (err: any) => (err ? res.status(err.status ?? 500).send(err.message) : res.send('signed in'))))
      const server = await listen(app)
      stops.push(async () => { await server.close(); await audit.close(); project.remove() })
      const response = await client(server.url).post('/login')
      await audit.flush()
      const logins = await audit.query({ types: ['LOGIN'] })
      if (mode === 'strict') {
        expect([response.status, response.text]).toEqual([503, expect.stringContaining('the audit trail cannot record it')])
        expect(logger.lines.some((line) => line.includes('recording a LOGIN failed, so the login is refused (strict mode): Error: no name for this user'))).toBe(true)
      } else {
        expect([response.status, response.text]).toEqual([200, 'signed in'])
      }
      expect(logins).toEqual([])
    }
  })

  it('fail-open keeps logins working, delivers from memory, and records an AUDIT_GAP once the spool is back', async () => {
    const app = await start('fail-open')
    stops.push(app.stop)
    app.disk.state.full = true
    for (let i = 0; i < 3; i++) expect((await client(app.server.url).post('/login', { username: 'alice', password: 'wonderland' })).location).toBe('/')
    await client(app.server.url).post('/login', { username: 'mallory', password: 'guess' })
    expect(app.logger.lines.filter((line) => line.includes('cannot write the spool'))).toHaveLength(1)
    app.disk.state.full = false
    await client(app.server.url).post('/login', { username: 'bob', password: 'x' })
    const rows = await app.rows()
    expect(rows.filter((r) => r.type === 'LOGIN')).toHaveLength(3)
    const gaps = rows.filter((r) => r.type === 'AUDIT_GAP')
    expect(gaps).toHaveLength(1)
    const data = parser.parse(gaps[0]!.data).data
    expect(data.GapEvents).toBe('4')
    expect(Date.parse(data.GapFrom)).toBeLessThanOrEqual(Date.parse(data.GapTo))
    expect(data.Reason).toContain('ENOSPC')
  })

  it('shows the delivery state at /admin/health to admins only', async () => {
    const app = await start('fail-open')
    stops.push(app.stop)
    expect((await client(app.server.url).get('/admin/health')).status).toBe(403)
    const alice = client(app.server.url)
    await alice.post('/login', { username: 'alice', password: 'wonderland' })
    expect((await alice.get('/admin/health')).status).toBe(403)
    const admin = client(app.server.url)
    await admin.post('/login', { username: 'admin', password: 'change-me' })
    await app.demo.audit.flush()
    const response = await admin.get('/admin/health')
    expect(response.status).toBe(200)
    const health = JSON.parse(response.text)
    expect(health).toMatchObject({ status: 'ok', queued: 0, inFlight: 0, parked: 0, sinkErrors: 0, oldestPendingTime: null, parkedEvents: [] })
    expect(health.delivered).toBeGreaterThanOrEqual(2)
    expect(health.spool).toEqual({ pending: 0, bytes: expect.any(Number) })
  })
})

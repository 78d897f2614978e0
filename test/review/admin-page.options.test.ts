import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import session from 'express-session'
import passportModule from 'passport'
import { authtrail } from '../../src/index.js'
import type { AuthtrailOptions } from '../../src/index.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'

/** An app with direct req.login(), and authtrail with the given admin options. */
async function appWith(options: Partial<AuthtrailOptions>) {
  const project = tempProject()
  const logger = memoryLogger()
  const passport = new (passportModule as any).Passport()
  passport.serializeUser((user: any, done: any) => done(null, user.username))
  passport.deserializeUser((name: string, done: any) => done(null, { username: name, admin: name.startsWith('admin') }))
  const audit = await authtrail({ passport, config: project.config, cwd: project.dir, logger, ...options })
  const app = express()
  app.use(session({ secret: 'test', resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } }))
  app.use(passport.initialize())
  app.use(passport.session())
  app.use(audit.middleware)
  app.post('/login', (req: any, res, next) => req.login({ username: String(req.query.name) }, (err: unknown) => (err ? next(err) : res.send('ok'))))
  app.use((_req, res) => res.status(404).send('the app\'s own 404'))
  const server = await listen(app)
  return { audit, logger, url: server.url, close: async () => { await server.close(); await audit.close(); project.remove() } }
}

describe('the audit page options', () => {
  const cleanup: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })
  const start = async (options: Partial<AuthtrailOptions>) => {
    const made = await appWith(options)
    cleanup.push(made.close)
    return made
  }
  const signedIn = async (url: string, name: string) => {
    const browser = client(url)
    await browser.post(`/login?name=${name}`)
    return browser
  }

  it('is off without isAdmin: the path reaches the app, and the log says so once', async () => {
    const app = await start({})
    const response = await (await signedIn(app.url, 'admin')).get('/admin/audit')
    expect(response.status).toBe(404)
    expect(response.text).toBe('the app\'s own 404')
    expect(app.logger.lines.filter((line) => line.includes('the audit page is off'))).toEqual(['authtrail: the audit page is off: pass isAdmin(user) to authtrail() to serve it at /admin/audit'])
  })

  it('serves at adminPath only, and two instances in one process each serve their own page to their own admins', async () => {
    const one = await start({ isAdmin: (user) => user.admin, adminPath: '/ops/audit' })
    const two = await start({ isAdmin: (user) => user.username === 'carol', adminPath: '/security' })
    const adminOfOne = await signedIn(one.url, 'admin-of-one')
    expect((await adminOfOne.get('/ops/audit')).status).toBe(200)
    expect((await adminOfOne.get('/admin/audit')).status).toBe(404)
    expect((await adminOfOne.get('/ops/auditx')).status).toBe(404)
    const carol = await signedIn(two.url, 'carol')
    expect((await carol.get('/security?view=sessions')).status).toBe(200)
    expect((await (await signedIn(two.url, 'admin2')).get('/security')).status).toBe(403)
    // Each page shows its own instance's events only.
    await one.audit.flush()
    await two.audit.flush()
    const page = await carol.get('/security')
    expect(page.text).toContain('carol')
    expect(page.text).not.toContain('admin-of-one')
  })

  it('refuses, and logs, when isAdmin throws', async () => {
    const app = await start({ isAdmin: () => { throw new Error('directory unreachable') } })
    expect((await (await signedIn(app.url, 'admin')).get('/admin/audit')).status).toBe(403)
    expect(app.logger.lines).toContain('authtrail: the isAdmin option threw, so the audit page was refused: directory unreachable')
  })

  it('refuses a bad adminPath or isAdmin at startup, naming the option', async () => {
    const passport = new (passportModule as any).Passport()
    for (const adminPath of ['admin', '/admin/', '/a/../b', '/a b', '/a?x']) {
      await expect(authtrail({ passport, isAdmin: () => true, adminPath })).rejects.toThrow(`authtrail: options.adminPath ${JSON.stringify(adminPath)}`)
    }
    await expect(authtrail({ passport, isAdmin: 'yes' as any })).rejects.toThrow('authtrail: options.isAdmin must be a function')
  })
})

import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import session from 'express-session'
import passportModule from 'passport'
import { authtrail } from '../../src/index.js'
import type { Authtrail } from '../../src/index.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

/** An app whose route calls req.login()/req.logout() itself, without passport.authenticate(). */
async function appWithDirectLogin(project: TempProject) {
  const passport = new (passportModule as any).Passport()
  passport.serializeUser((user: any, done: any) => done(null, user.username))
  passport.deserializeUser((name: string, done: any) => done(null, { username: name }))
  const audit = await authtrail({ passport, config: project.config, cwd: project.dir, logger: memoryLogger() })
  const app = express()
  app.use(session({ secret: 'test', resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } }))
  app.use(passport.initialize())
  app.use(passport.session())
  app.use(audit.middleware)
  app.post('/sso-callback', (req: any, res, next) => req.login({ username: String(req.query.name) }, (err: unknown) => (err ? next(err) : res.send('ok'))))
  app.post('/bye', (req: any, res, next) => req.logout((err: unknown) => (err ? next(err) : res.send('bye'))))
  return { app, audit, passport }
}

describe('passport hooks', () => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })
  const start = async () => {
    const project = tempProject()
    cleanup.push(() => project.remove())
    const made = await appWithDirectLogin(project)
    cleanup.push(() => made.audit.close())
    const server = await listen(made.app)
    cleanup.push(() => server.close())
    return { ...made, server }
  }
  const types = async (audit: Authtrail) => {
    await audit.flush()
    return (await audit.query({})).map((row) => `${row.type} ${row.username}`).reverse()
  }

  it('records LOGIN and LOGOUT when the app calls req.login() and req.logout() itself', async () => {
    const { audit, server } = await start()
    const browser = client(server.url)
    await browser.post('/sso-callback?name=zoe')
    await browser.post('/bye')
    expect(await types(audit)).toEqual(['LOGIN zoe', 'LOGOUT zoe'])
  })

  it('keeps two instances in one process apart: each records only its own app', async () => {
    const one = await start()
    const two = await start()
    await client(one.server.url).post('/sso-callback?name=one')
    await client(two.server.url).post('/sso-callback?name=two')
    expect(await types(one.audit)).toEqual(['LOGIN one'])
    expect(await types(two.audit)).toEqual(['LOGIN two'])
  })

  it('close() removes the hooks and logins keep working', async () => {
    const { audit, server, passport } = await start()
    await client(server.url).post('/sso-callback?name=before')
    await audit.flush()
    const before = await audit.query({})
    await audit.close()
    expect(passport._sm.logIn.name).not.toMatch(/audited/i)
    const response = await client(server.url).post('/sso-callback?name=after')
    expect(response.status).toBe(200)
    expect(before.map((row) => row.username)).toEqual(['before'])
  })

  it('refuses a second instance on the same embedded store directory, naming the holder', async () => {
    const project = tempProject()
    cleanup.push(() => project.remove())
    const first = await appWithDirectLogin(project)
    cleanup.push(() => first.audit.close())
    const error = await appWithDirectLogin(project).catch((err: Error) => err)
    expect((error as Error).message).toContain(path.join(project.dir, 'data'))
    expect((error as Error).message).toContain('in use by another authtrail instance in this process')
  })
})

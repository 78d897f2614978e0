import { afterEach, describe, expect, it } from 'vitest'
import express from 'express'
import session from 'express-session'
import passportModule from 'passport'
import { XMLParser } from 'fast-xml-parser'
import { authtrail } from '../../src/index.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'

const parse = (xml: string) => new XMLParser({ parseTagValue: false }).parse(xml)

describe('what an app\'s user description returns', () => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step()
  })

  it('is stored as text, whatever its type: a BigInt id or an object in the profile keeps no event out of the spool', async () => {
    const project = tempProject()
    cleanup.push(() => project.remove())
    const logger = memoryLogger()
    const passport = new (passportModule as any).Passport()
    passport.serializeUser((user: any, done: any) => done(null, user.name))
    passport.deserializeUser((name: string, done: any) => done(null, { name }))
    const audit = await authtrail({
      passport,
      config: project.config,
      cwd: project.dir,
      logger,
      username: (user: any) => user.name,
      userId: () => 9007199254740993n as unknown as string,
      profile: () => ({ email: 'zoe@example.org', phone: 4477 as unknown as string, gender: { nested: true } as unknown as string, surprise: 'dropped' } as never),
    })
    cleanup.push(() => audit.close())
    const app = express()
    app.use(session({ secret: 'test', resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } }))
    app.use(passport.initialize())
    app.use(passport.session())
    app.use(audit.middleware)
    app.post('/sso', (req: any, res, next) => req.login({ name: 'zoe' }, (err: unknown) => (err ? next(err) : res.send('ok'))))
    const server = await listen(app)
    cleanup.push(() => server.close())

    await client(server.url).post('/sso')
    await audit.flush()
    const [row] = await audit.query({ types: ['LOGIN'] })
    const context = parse(row!.session_context).sessioncontext
    expect(context).toMatchObject({ username: 'zoe', sid: '9007199254740993', email: 'zoe@example.org', phone: '4477', gender: '' })
    expect(row!.session_context).not.toContain('surprise')
    expect(logger.lines.join('\n')).not.toMatch(/spool/)
  })
})

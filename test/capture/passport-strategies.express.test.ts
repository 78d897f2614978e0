import { afterEach, describe, expect, it } from 'vitest'
import express5 from 'express'
import express4 from 'express4'
import session from 'express-session'
import passportModule from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import { authtrail } from '../../src/index.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'

const EXPRESS_VERSIONS = [
  { name: 'Express 4', express: express4 },
  { name: 'Express 5', express: express5 },
]

const RIGHT = 'wonderland1'
const checkPassword = (username: string, password: string, done: (err: unknown, user?: any, info?: any) => void) =>
  password === RIGHT ? done(null, { username }) : done(null, false, { message: 'Incorrect password.' })
/** Module level, as apps write it: every passport instance below that use()s it gets this one object. */
const shared = new LocalStrategy(checkPassword)

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`passport strategies on ${name}`, () => {
    const cleanup: Array<() => Promise<void> | void> = []
    afterEach(async () => {
      for (const step of cleanup.splice(0).reverse()) await step()
    })

    /** An app with its own passport instance and authtrail; `routes` adds the login routes. */
    const start = async (properties: Record<string, string>, routes: (app: any, passport: any) => void) => {
      const project = tempProject({ 'security.logging.bruteforce.block': 'true', ...properties })
      cleanup.push(() => project.remove())
      const passport = new (passportModule as any).Passport()
      passport.serializeUser((user: any, done: any) => done(null, user.username))
      passport.deserializeUser((username: string, done: any) => done(null, { username }))
      const logger = memoryLogger()
      const audit = await authtrail({ passport, config: project.config, cwd: project.dir, logger })
      cleanup.push(() => audit.close())
      const app = express()
      app.use(express.urlencoded({ extended: false }))
      app.use(session({ secret: 'test', resave: false, saveUninitialized: false, cookie: { maxAge: 60_000 } }))
      app.use(passport.initialize())
      app.use(passport.session())
      app.use(audit.middleware)
      routes(app, passport)
      const server = await listen(app)
      cleanup.push(() => server.close())
      const events = async () => {
        await audit.flush()
        return (await audit.query({ types: ['LOGIN', 'LOGINERROR'] })).reverse().map((row) => `${row.type} ${row.username}`)
      }
      const post = (path: string, username: string, password: string) => client(server.url).post(path, { username, password })
      const login = async (path: string, username: string, password: string) => (await post(path, username, password)).status
      return { events, login, post, logger, audit }
    }

    it('keeps two apps that share one strategy object apart: each records and locks out only its own users', async () => {
      const app = (passport: any) => {
        passport.use('local', shared)
        return passport.authenticate('local')
      }
      const one = await start({ 'security.logging.bruteforce.user.attempts': '2' }, (a, passport) => a.post('/login', app(passport), (_req: any, res: any) => res.send('ok')))
      const two = await start({ 'security.logging.bruteforce.user.attempts': '2' }, (a, passport) => a.post('/login', app(passport), (_req: any, res: any) => res.send('ok')))
      expect(await two.login('/login', 'bob', RIGHT)).toBe(200)
      expect(await one.login('/login', 'alice', 'wrong')).toBe(401)
      expect(await one.login('/login', 'alice', 'wrong')).toBe(401)
      expect(await one.login('/login', 'alice', RIGHT)).toBe(429)
      expect(await two.login('/login', 'alice', RIGHT)).toBe(200)
      expect(await one.events()).toEqual(['LOGINERROR alice', 'LOGINERROR alice', 'LOGINERROR alice'])
      expect(await two.events()).toEqual(['LOGIN bob', 'LOGIN alice'])
      expect(Object.prototype.hasOwnProperty.call(shared, 'authenticate')).toBe(false)
    })

    /** A chain whose first strategy reads a field the form does not have, so it always fails. */
    const chain = (a: any, passport: any) => {
      passport.use('by-email', new LocalStrategy({ usernameField: 'email' }, (_email, _password, done) => done(null, false, { message: 'No such email.' })))
      passport.use('local', new LocalStrategy(checkPassword))
      a.post('/login', passport.authenticate(['by-email', 'local']), (_req: any, res: any) => res.send('ok'))
    }

    it('records no LOGINERROR and counts no failure when a later strategy of a chain succeeds', async () => {
      const app = await start({ 'security.logging.bruteforce.ip.attempts': '3' }, chain)
      for (let i = 0; i < 4; i++) expect(await app.login('/login', `user${i}`, RIGHT)).toBe(200)
      expect(await app.events()).toEqual(['LOGIN user0', 'LOGIN user1', 'LOGIN user2', 'LOGIN user3'])
    })

    it('records one LOGINERROR, under the name the checking strategy read, and counts one failure when a whole chain fails', async () => {
      const app = await start({ 'security.logging.bruteforce.user.attempts': '2' }, chain)
      // passport answers with the first strategy's status: 400, for the email it did not get.
      expect(await app.login('/login', 'alice', 'wrong')).toBe(400)
      expect(await app.login('/login', 'alice', 'wrong')).toBe(400)
      expect(await app.login('/login', 'alice', RIGHT)).toBe(429)
      // The third is the refusal, recorded and not counted.
      expect(await app.events()).toEqual(['LOGINERROR alice', 'LOGINERROR alice', 'LOGINERROR alice'])
    })

    it('records a failed login before passport answers it, for a lone strategy and for a chain\'s last', async () => {
      let audit: any
      const recorded = () => {
        const m = audit.metrics()
        return String(m.delivered + m.queued + m.parked)
      }
      const app = await start({}, (a, passport) => {
        passport.use('local', new LocalStrategy(checkPassword))
        passport.use('by-email', new LocalStrategy({ usernameField: 'email' }, (_email, _password, done) => done(null, false)))
        for (const [path, strategies] of [['/lone', 'local'], ['/chain', ['by-email', 'local']]] as const) {
          a.post(path, (req: any, res: any, next: any) => passport.authenticate(strategies, () => res.send(recorded()))(req, res, next))
        }
      })
      audit = app.audit
      const answers = []
      for (const path of ['/lone', '/chain']) {
        const before = Number(recorded())
        answers.push(Number((await app.post(path, 'alice', 'wrong')).text) - before)
      }
      expect(answers).toEqual([1, 1])
    })

    it('keeps an authenticate() started by a failure callback apart from the chain that failed', async () => {
      const app = await start({}, (a, passport) => {
        passport.use('a', new LocalStrategy(checkPassword))
        passport.use('b', new LocalStrategy(checkPassword))
        a.post('/nested', (req: any, res: any, next: any) =>
          passport.authenticate('a', () => passport.authenticate('b', (_err: unknown, user: unknown) => res.status(user ? 200 : 401).send('done'))(req, res, next))(req, res, next),
        )
      })
      expect(await app.login('/nested', 'alice', 'wrong')).toBe(401)
      expect(await app.events()).toEqual(['LOGINERROR alice', 'LOGINERROR alice'])
    })

    it('records LOGINERROR and locks out for a strategy object given to passport.authenticate() instead of a name', async () => {
      const app = await start({ 'security.logging.bruteforce.user.attempts': '2' }, (a, passport) =>
        a.post('/login', passport.authenticate(new LocalStrategy(checkPassword)), (_req: any, res: any) => res.send('ok')),
      )
      expect(await app.login('/login', 'alice', 'wrong')).toBe(401)
      expect(await app.login('/login', 'alice', 'wrong')).toBe(401)
      expect(await app.login('/login', 'alice', RIGHT)).toBe(429)
      expect(await app.login('/login', 'bob', RIGHT)).toBe(200)
      expect(await app.events()).toEqual(['LOGINERROR alice', 'LOGINERROR alice', 'LOGINERROR alice', 'LOGIN bob'])
    })
  })
}

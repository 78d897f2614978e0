import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import express5 from 'express'
import express4 from 'express4'
import session from 'express-session'
import { XMLParser } from 'fast-xml-parser'
import { createDemo } from '../../demo/app.js'
import type { Demo } from '../../demo/app.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { eventually, sleep } from '../helpers/eventually.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

const FIREFOX_33 = 'Mozilla/5.0 (Windows NT 6.3; WOW64; rv:33.0) Gecko/20100101 Firefox/33.0'
const parser = new XMLParser({ parseTagValue: false })
const parse = (xml: string) => parser.parse(xml)

const EXPRESS_VERSIONS = [
  { name: 'Express 4', express: express4 },
  { name: 'Express 5', express: express5 },
]

for (const { name, express } of EXPRESS_VERSIONS) {
  describe(`capture on ${name} with express-session and passport-local`, () => {
    let project: TempProject
    let demo: Demo
    let server: Awaited<ReturnType<typeof listen>>
    const logger = memoryLogger()

    beforeAll(async () => {
      // Raw session ids so that the test can compare them with the session cookie.
      project = tempProject({ 'security.logging.sessionid': 'raw' })
      demo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 1, sweepIntervalMs: 100, logger })
      server = await listen(demo.app)
    })
    afterAll(async () => {
      await server?.close()
      await demo?.audit.close()
      project?.remove()
    })

    const rows = async (filter: Parameters<Demo['audit']['query']>[0]) => {
      await demo.audit.flush()
      return demo.audit.query(filter)
    }

    it('records LOGINERROR with the strategy message, the submitted name and login method FORM', async () => {
      const browser = client(server.url, { 'user-agent': FIREFOX_33 })
      const response = await browser.post('/login', { username: 'alice', password: 'not-her-password' })
      expect(response.location).toBe('/?error=1')
      const [row] = await rows({ types: ['LOGINERROR'], user: 'alice' })
      expect(row).toBeDefined()
      const data = parse(row!.data).data
      expect(data.SecurityLastExeption).toBe('Incorrect password.')
      expect(data.errorData).toEqual({ password: '', Message: 'Incorrect password.', domain: '', name: 'FORM', username: 'alice' })
      expect([data.Browser, data.BrowserVersion, data.OS, data.OSVersion]).toEqual(['FIREFOX', '33.0', 'WINDOWS', 'nt 6.3'])
      expect(data.UserAgent).toBe(FIREFOX_33.toLowerCase())
      expect(data.IP).toBe('127.0.0.1')
      expect(row!.ip).toBe('127.0.0.1')
    })

    it('records LOGINERROR for an unknown user with the name that was tried', async () => {
      await client(server.url).post('/login', { username: 'mallory', password: 'guess' })
      const [row] = await rows({ types: ['LOGINERROR'], user: 'mallory' })
      expect(parse(row!.data).data.SecurityLastExeption).toBe('Unknown user.')
      expect(parse(row!.session_context).sessioncontext.username).toBe('')
    })

    it('records LOGIN with the session id the user has after passport regenerates the session', async () => {
      const browser = client(server.url, { 'user-agent': FIREFOX_33 })
      await browser.get('/?warm=1')
      const before = browser.sessionId()
      expect((await browser.post('/login', { username: 'alice', password: 'wonderland' })).location).toBe('/')
      const after = browser.sessionId()
      expect(after).toBeDefined()
      expect(after).not.toBe(before)
      const logins = await rows({ types: ['LOGIN'], user: 'alice' })
      const row = logins.find((r) => r.session_id === after)
      expect(row).toBeDefined()
      const data = parse(row!.data).data
      expect(data).toMatchObject({ HttpSessionId: after, UserName: 'alice', Browser: 'FIREFOX', OS: 'WINDOWS', OSVersion: 'nt 6.3', IP: '127.0.0.1', Host: '127.0.0.1' })
      const context = parse(row!.session_context).sessioncontext
      expect(context).toMatchObject({ username: 'alice', sid: '1', login: 'alice', sessionid: after, email: 'alice@example.org', ip: '127.0.0.1', userdata: 'default' })
      expect(Date.parse(row!.time)).toBeGreaterThan(Date.now() - 60_000)
    })

    it('records LOGOUT with the user and session from before logout, and never a SESSIONTIMEOUT for it', async () => {
      for (const how of ['POST', 'GET link'] as const) {
        const browser = client(server.url)
        await browser.post('/login', { username: 'alice', password: 'wonderland' })
        const session = browser.sessionId()!
        if (how === 'POST') await browser.post('/logout')
        else await browser.get('/logout')
        expect(browser.sessionId()).not.toBe(session)
        const [logout] = (await rows({ types: ['LOGOUT'] })).filter((r) => r.session_id === session)
        expect(logout, how).toBeDefined()
        expect(logout!.username).toBe('alice')
        expect(parse(logout!.data).data).toEqual({ HttpSessionId: session })
        // Well past the one-second timeout and several sweeps.
        await sleep(1800)
        await demo.audit.sweep()
        expect((await rows({ types: ['SESSIONTIMEOUT'] })).filter((r) => r.session_id === session), how).toEqual([])
      }
    })

    it('records no LOGOUT for a logout with nobody signed in', async () => {
      const before = (await rows({ types: ['LOGOUT'] })).length
      const visitor = client(server.url)
      await visitor.get('/')
      expect((await visitor.get('/logout')).status).toBe(302)
      expect((await client(server.url).post('/logout')).status).toBe(302)
      expect(await rows({ types: ['LOGOUT'] })).toHaveLength(before)
    })

    it('records exactly one SESSIONTIMEOUT, with the user name, when an authenticated session expires', async () => {
      const browser = client(server.url)
      await browser.post('/login', { username: 'admin', password: 'change-me' })
      const session = browser.sessionId()!
      const timeout = await eventually(async () => {
        const found = (await rows({ types: ['SESSIONTIMEOUT'], user: 'admin' })).filter((r) => r.session_id === session)
        expect(found).toHaveLength(1)
        return found[0]!
      })
      expect(parse(timeout.data).data).toEqual({ HttpSessionId: session, UserName: 'admin' })
      const [login] = (await rows({ types: ['LOGIN'], user: 'admin' })).filter((r) => r.session_id === session)
      // The event carries the time the session expired, one timeout after the last request.
      expect(Date.parse(timeout.time) - Date.parse(login!.time)).toBeGreaterThanOrEqual(1000)
      expect(Date.parse(timeout.time) - Date.parse(login!.time)).toBeLessThan(2000)
      await sleep(600)
      await demo.audit.sweep()
      expect((await rows({ types: ['SESSIONTIMEOUT'] })).filter((r) => r.session_id === session)).toHaveLength(1)
      // The expired cookie no longer signs anyone in.
      await browser.get('/')
      expect(demo.audit.metrics().sessions).toBeGreaterThanOrEqual(0)
    })

    it('keeps an active session alive: requests inside the timeout postpone SESSIONTIMEOUT', async () => {
      const browser = client(server.url)
      await browser.post('/login', { username: 'alice', password: 'wonderland' })
      const session = browser.sessionId()!
      for (let i = 0; i < 4; i++) {
        await sleep(400)
        await browser.get('/')
      }
      expect((await rows({ types: ['SESSIONTIMEOUT'] })).filter((r) => r.session_id === session)).toEqual([])
      await eventually(async () => expect((await rows({ types: ['SESSIONTIMEOUT'] })).filter((r) => r.session_id === session)).toHaveLength(1))
    })

    it('leaves no trace of a failed password anywhere in the audit table', async () => {
      const secret = 'hunter2-secret'
      await client(server.url, { 'user-agent': FIREFOX_33 }).post('/login', { username: 'alice', password: secret })
      // Users do type their password into the name field.
      await client(server.url).post('/login', { username: secret, password: secret })
      await client(server.url).post(`/login?password=${secret}&next=${secret}`, { username: 'alice', password: secret })
      const all = await rows({ limit: 10_000 })
      expect(all.filter((r) => r.type === 'LOGINERROR').length).toBeGreaterThanOrEqual(3)
      expect(JSON.stringify(all)).not.toContain(secret)
      expect(logger.lines.join('\n')).not.toContain(secret)
    })

    it('uses req.ip, so X-Forwarded-For is ignored without trust proxy', async () => {
      await client(server.url, { 'x-forwarded-for': '203.0.113.9' }).post('/login', { username: 'spoofer', password: 'x' })
      const [row] = await rows({ user: 'spoofer' })
      expect(row!.ip).toBe('127.0.0.1')
      expect(parse(row!.data).data.IP).toBe('127.0.0.1')
    })
  })
}

describe('capture behind a trusted proxy', () => {
  it('takes the client address from X-Forwarded-For when the app sets trust proxy', async () => {
    const project = tempProject()
    const demo = await createDemo({ express: express5, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 60, trustProxy: 'loopback', logger: memoryLogger() })
    const server = await listen(demo.app)
    try {
      await client(server.url, { 'x-forwarded-for': '203.0.113.9' }).post('/login', { username: 'proxied', password: 'x' })
      await demo.audit.flush()
      const [row] = await demo.audit.query({ user: 'proxied' })
      expect(row!.ip).toBe('203.0.113.9')
      // Hashed by default: 32 hex digits, not the cookie's id.
      expect(row!.session_id).toMatch(/^[0-9A-F]{32}$/)
    } finally {
      await server.close()
      await demo.audit.close()
      project.remove()
    }
  })

  it('stores the address of a session it adopts as a login stores it: cut to the field limit', async () => {
    // A session signed in on another instance, seen first here through a proxy that forwards 3,000 characters.
    const store = new session.MemoryStore()
    const [first, second] = [tempProject(), tempProject()]
    const options = { express: express5, sessionTimeoutSeconds: 1, sweepIntervalMs: 100, trustProxy: 'loopback', logger: memoryLogger(), store, sessionSecret: 'shared-secret' }
    const signing = await createDemo({ ...options, config: first.config, cwd: first.dir })
    const adopting = await createDemo({ ...options, config: second.config, cwd: second.dir })
    const [one, two] = [await listen(signing.app), await listen(adopting.app)]
    try {
      const login = await client(one.url).post('/login', { username: 'alice', password: 'wonderland' })
      const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!
      await client(two.url, { 'x-forwarded-for': 'f'.repeat(3000), cookie }).get('/')
      const row = await eventually(async () => {
        await adopting.audit.flush()
        const [timeout] = await adopting.audit.query({ types: ['SESSIONTIMEOUT'] })
        if (!timeout) throw new Error('no SESSIONTIMEOUT yet')
        return timeout
      })
      expect([row.username, row.ip]).toEqual(['alice', 'f'.repeat(1024)])
    } finally {
      await one.close()
      await two.close()
      await signing.audit.close()
      await adopting.audit.close()
      first.remove()
      second.remove()
    }
  })
})

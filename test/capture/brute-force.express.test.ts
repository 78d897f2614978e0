import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { XMLParser } from 'fast-xml-parser'
import { attemptKey, createMemoryAttemptStore } from '../../src/capture/attempt-store.js'
import { createBruteForceGuard } from '../../src/capture/brute-force.js'
import type { AuditEvent } from '../../src/types.js'
import { client } from '../helpers/browser-like-client.js'
import { eventually } from '../helpers/eventually.js'
import { startRunningDemo } from '../helpers/running-demo.js'
import type { RunningDemo } from '../helpers/running-demo.js'

const parser = new XMLParser({ parseTagValue: false })

describe('the brute-force guard on its own', () => {
  const guard = (block: boolean, recorded: AuditEvent[], clock: { t: number }) =>
    createBruteForceGuard({ userAttempts: 3, ipAttempts: 5, windowMs: 60_000, blockMs: 30_000, block, syncMs: 60_000, store: createMemoryAttemptStore(), record: (e) => recorded.push(e), warn: () => {}, now: () => clock.t })

  it('records one LOCKOUT when a user reaches the threshold, and refuses the user and nobody else while blocking', async () => {
    const recorded: AuditEvent[] = []
    const clock = { t: Date.UTC(2026, 11, 1, 10) }
    const g = guard(true, recorded, clock)
    for (let i = 0; i < 3; i++) g.failed('alice', `198.51.100.${i}`, clock.t)
    expect(g.blocked('alice', '203.0.113.1')).toEqual({ scope: 'user', until: clock.t + 30_000 })
    expect(g.blocked('bob', '203.0.113.1')).toBeUndefined()
    await g.sync()
    g.failed('alice', '198.51.100.9', clock.t)
    await g.sync()
    expect(recorded.map((e) => [e.type, e.username, e.ip, e.lockout])).toEqual([['LOCKOUT', 'alice', '198.51.100.2', { scope: 'user', attempts: 3, windowSeconds: 60, until: clock.t + 30_000, enforced: true }]])
    clock.t += 30_001
    expect(g.blocked('alice', '203.0.113.1')).toBeUndefined()
    await g.stop()
  })

  it('hands the store keys hashed under the session key, never the names nor their plain hashes', async () => {
    const secret = Buffer.alloc(32, 7)
    const store = createMemoryAttemptStore()
    const sent: string[] = []
    const g = createBruteForceGuard({ userAttempts: 3, ipAttempts: 5, windowMs: 60_000, blockMs: 30_000, block: false, syncMs: 60_000, secret, record: () => {}, warn: () => {},
      store: { ...store, sync: (request) => (sent.push(...request.deltas.map((d) => d.key)), store.sync(request)) } })
    g.failed('hunter22', '192.0.2.1', Date.now())
    await g.sync()
    expect(sent.sort()).toEqual([attemptKey('ip', '192.0.2.1', secret), attemptKey('user', 'hunter22', secret)].sort())
    expect(sent).not.toContain(attemptKey('user', 'hunter22'))
    expect(attemptKey('user', 'hunter22', secret)).toMatch(/^u:[0-9a-f]{40}$/)
    await g.stop()
  })

  it('counts an address across usernames, and only records when blocking is off', async () => {
    const recorded: AuditEvent[] = []
    const clock = { t: Date.UTC(2026, 11, 1, 10) }
    const g = guard(false, recorded, clock)
    for (let i = 0; i < 5; i++) g.failed(`user${i}`, '192.0.2.66', clock.t + i)
    await g.sync()
    expect(recorded.map((e) => [e.username, e.ip, e.lockout?.scope, e.lockout?.enforced])).toEqual([['', '192.0.2.66', 'ip', false]])
    expect(g.blocked('user1', '192.0.2.66')).toBeUndefined()
    await g.stop()
  })

  it('forgets failures older than the window, and tells a success how many came before it', async () => {
    const clock = { t: Date.UTC(2026, 11, 1, 10) }
    const g = guard(true, [], clock)
    g.failed('carol', '192.0.2.1', clock.t)
    clock.t += 120_000
    await g.sync()
    g.failed('carol', '192.0.2.1', clock.t)
    g.failed('carol', '192.0.2.1', clock.t)
    expect(g.blocked('carol', '')).toBeUndefined()
    expect(g.succeeded('carol')).toBe(2)
    expect(g.succeeded('carol')).toBe(0)
    await g.stop()
  })

  it('does not count failures twice when the store took them and then failed', async () => {
    const memory = createMemoryAttemptStore()
    let failNext = false
    const store = {
      description: 'a store that fails after taking the failures',
      async sync(request: Parameters<typeof memory.sync>[0]) {
        const result = await memory.sync(request)
        if (failNext) {
          failNext = false
          throw Object.assign(new Error('connection lost after the insert'), { applied: { resets: true, deltas: true } })
        }
        return result
      },
      close: async () => {},
    }
    const clock = { t: Date.UTC(2026, 11, 1, 10) }
    const recorded: AuditEvent[] = []
    const g = createBruteForceGuard({ userAttempts: 4, ipAttempts: 0, windowMs: 60_000, blockMs: 30_000, block: false, syncMs: 60_000, store, record: (e) => recorded.push(e), warn: () => {}, now: () => clock.t })
    g.failed('erin', '192.0.2.8', clock.t)
    g.failed('erin', '192.0.2.8', clock.t)
    failNext = true
    await g.sync()
    await g.sync()
    g.failed('erin', '192.0.2.8', clock.t)
    await g.sync()
    // Three failures, not five: no lockout at four.
    expect(recorded).toEqual([])
    g.failed('erin', '192.0.2.8', clock.t)
    await g.sync()
    expect(recorded.map((e) => [e.type, e.lockout?.attempts])).toEqual([['LOCKOUT', 4]])
    await g.stop()
  })

  it('resets a user\'s failures in the shared store at a success, even when another instance counted them', async () => {
    const store = createMemoryAttemptStore()
    const clock = { t: Date.UTC(2026, 11, 1, 10) }
    const make = () => createBruteForceGuard({ userAttempts: 3, ipAttempts: 0, windowMs: 60_000, blockMs: 30_000, block: true, syncMs: 60_000, store, record: () => {}, warn: () => {}, now: () => clock.t })
    const [one, two] = [make(), make()]
    one.failed('dave', '192.0.2.7', clock.t)
    one.failed('dave', '192.0.2.7', clock.t)
    await one.sync()
    expect(two.succeeded('dave')).toBe(0)
    await two.sync()
    // One sync later (the documented lag), the first instance knows; were the two failures still
    // counted, one more would lock dave out.
    await one.sync()
    one.failed('dave', '192.0.2.7', clock.t)
    await one.sync()
    expect(one.blocked('dave', '')).toBeUndefined()
    await Promise.all([one.stop(), two.stop()])
  })
})

describe('brute-force blocking in the demo app', () => {
  let running: RunningDemo
  beforeAll(async () => {
    running = await startRunningDemo({ 'security.logging.bruteforce.user.attempts': '3', 'security.logging.bruteforce.ip.attempts': '0', 'security.logging.bruteforce.block': 'true', 'security.logging.bruteforce.block.seconds': '600', 'security.logging.bruteforce.sync.ms': '50' }, { sessionTimeoutSeconds: 600 })
  })
  afterAll(async () => {
    await running?.close()
  })
  const rows = async (user: string) => {
    await running.demo.audit.flush()
    return (await running.demo.audit.query({ user, limit: 100 })).reverse()
  }

  it('refuses a locked-out user with 429, Retry-After and the same plain message whether the user exists or not', async () => {
    const answers = []
    for (const username of ['alice', 'nobody-at-all']) {
      for (let i = 0; i < 3; i++) expect((await client(running.url).post('/login', { username, password: `wrong-${i}` })).status).toBe(302)
      const response = await fetch(`${running.url}/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username, password: username === 'alice' ? 'wonderland' : 'x' }) })
      answers.push({ status: response.status, retryAfter: Number(response.headers.get('retry-after')), type: response.headers.get('content-type'), body: await response.text() })
    }
    expect(answers[0]).toEqual({ status: 429, retryAfter: expect.any(Number), type: 'text/plain; charset=utf-8', body: 'Too many failed login attempts. Try again in 10 minutes.' })
    expect(answers[0]!.retryAfter).toBeGreaterThan(590)
    expect(answers[0]!.retryAfter).toBeLessThanOrEqual(600)
    expect(answers[1]).toEqual(answers[0])
    // The right password did not get in, and the refusal itself is on record, besides the LOCKOUT.
    await eventually(async () => expect((await rows('alice')).map((r) => r.type).sort()).toEqual(['LOCKOUT', 'LOGINERROR', 'LOGINERROR', 'LOGINERROR', 'LOGINERROR']))
    const all = await rows('alice')
    expect(parser.parse(all.find((r) => r.type === 'LOCKOUT')!.data).data).toMatchObject({ Scope: 'user', UserName: 'alice', Attempts: '3', WindowSeconds: '900', Enforced: 'true' })
    expect(parser.parse(all.filter((r) => r.type === 'LOGINERROR').at(-1)!.data).data.SecurityLastExeption).toMatch(/^Login refused: too many failed attempts for this user; locked out until \d{4}-/)
    expect(JSON.stringify(all)).not.toContain('wonderland')
  })

  it('counts and refuses a name by what was typed, when the guess is part of the name or the name itself', async () => {
    for (const password of ['smith', 'dora', 'x']) expect((await client(running.url).post('/login', { username: 'dora.smith', password })).status).toBe(302)
    const refused = await client(running.url).post('/login', { username: 'dora.smith', password: 'dora.smith' })
    expect(refused.status).toBe(429)
    await running.demo.audit.flush()
    const lockout = await eventually(async () => {
      const [row] = (await running.demo.audit.query({ types: ['LOCKOUT'], limit: 100 })).filter((r) => r.username === 'dora.smith')
      if (!row) throw new Error('no LOCKOUT for dora.smith yet')
      return row
    })
    expect(parser.parse(lockout.data).data).toMatchObject({ Scope: 'user', UserName: 'dora.smith', Attempts: '3' })
    // What was stored of each attempt is still scrubbed of its password.
    const failures = (await running.demo.audit.query({ types: ['LOGINERROR'], limit: 100 })).filter((r) => r.username.includes('[redacted]')).map((r) => r.username).sort()
    expect(failures).toEqual(['[redacted]', '[redacted].smith', 'dora.[redacted]'])
  })

  it('marks a successful login that ends a run of failures with PriorFailures, and only then', async () => {
    const browser = client(running.url)
    await browser.post('/login', { username: 'admin', password: 'nope' })
    await browser.post('/login', { username: 'admin', password: 'nope again' })
    expect((await browser.post('/login', { username: 'admin', password: 'change-me' })).location).toBe('/')
    await browser.post('/logout')
    expect((await client(running.url).post('/login', { username: 'admin', password: 'change-me' })).location).toBe('/')
    const logins = (await rows('admin')).filter((r) => r.type === 'LOGIN').map((r) => parser.parse(r.data).data.PriorFailures)
    expect(logins).toEqual(['2', undefined])
  })
})

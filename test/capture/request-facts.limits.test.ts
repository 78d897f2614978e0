import { describe, expect, it } from 'vitest'
import passportModule from 'passport'
import { authtrail } from '../../src/index.js'
import { captureEvent, FACT_MAX_BYTES, storedIdentity } from '../../src/capture/request-facts.js'
import type { RequestLike } from '../../src/capture/request-facts.js'

const LIMITS = { userAgentMaxLength: 512, fieldMaxLength: 1024 }
const request = (headers: Record<string, string> = {}, query: unknown = {}): RequestLike => ({ ip: '192.0.2.1', headers, query, sessionID: 's' })
const failure = (username: string, password: string, req = request()) =>
  captureEvent('LOGINERROR', req, 'SID', { username, userId: '', profile: {} }, LIMITS, { method: 'FORM', message: 'Bad credentials', password })
const bytes = (text: string) => Buffer.byteLength(text, 'utf8')

describe('what a request-derived value keeps', () => {
  it('fits the indexed username column in bytes, whatever the characters, on a character boundary', () => {
    const cjk = failure('漢'.repeat(1024), 'secret-pw')
    expect(bytes(cjk.username)).toBeLessThanOrEqual(FACT_MAX_BYTES)
    expect(cjk.username).toBe('漢'.repeat(Math.floor(FACT_MAX_BYTES / 3)))
    const emoji = failure('😀'.repeat(600), 'secret-pw')
    expect(emoji.username).toBe('😀'.repeat(FACT_MAX_BYTES / 4))
    expect(failure('a'.repeat(1024), 'secret-pw').username).toBe('a'.repeat(1024))
  })

  it('stays within the limit when redacting the password makes the value longer', () => {
    const event = failure('abcd'.repeat(256), 'abcd')
    expect(event.username.length).toBe(1024)
    expect(event.username).not.toContain('abcd')
    expect(storedIdentity(request(), 'abcd'.repeat(256), LIMITS, 'abcd').username).toBe(event.username)
  })

  it('never keeps the first characters of a password that the cut would have split', () => {
    const event = failure(`${'x'.repeat(1020)}hunter22`, 'hunter22')
    expect(event.username).toBe(`${'x'.repeat(1020)}[red`)
    const agent = failure('alice', 'hunter22', request({ 'user-agent': `${'m'.repeat(508)}hunter22` }))
    expect(agent.userAgent).toBe(`${'m'.repeat(508)}[red`)
    expect(failure('alice', 'hunter22', request({ 'user-agent': 'u'.repeat(600) })).userAgent).toBe('u'.repeat(512))
    const params = failure('alice', 'CorrectHorseBattery1', request({}, { next: `${'a'.repeat(246)}CorrectHorseBattery1`, page: '2' })).urlParams
    expect(params).toEqual([['page', '2']])
  })

  it('keeps at most 32 query parameters, counting repeated names by value', () => {
    const event = failure('alice', 'pw', request({}, { next: Array.from({ length: 1000 }, (_, i) => `/page${i}`), other: 'x' }))
    expect(event.urlParams).toHaveLength(32)
    expect(event.urlParams.every(([name]) => name === 'next')).toBe(true)
  })
})

describe('options.fieldMaxLength', () => {
  it('is refused beyond what the shipped tables hold, naming the option and the value', async () => {
    const passport = new (passportModule as any).Passport()
    for (const value of [5000, 0, 1.5]) {
      await expect(authtrail({ passport, fieldMaxLength: value })).rejects.toThrow(`authtrail: options.fieldMaxLength ${value}: expected a whole number from 1 to 1024`)
    }
  })
})

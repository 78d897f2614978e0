import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createDescriber } from '../../src/describe/event-xml.js'
import type { AuditRow } from '../../src/review/audit-query.js'
import { toEcs } from '../../src/review/export-ecs.js'
import { toEdx } from '../../src/review/export-edx.js'
import { createPseudonymizer } from '../../src/review/export-fields.js'
import type { AuditEvent, AuditEventType } from '../../src/types.js'
import { auditEvent, FIREFOX_33 } from '../helpers/audit-event.js'

const describeEvent = createDescriber()
const KEY = 'pseudonym-key-0123456789abcdef0123456789'

/** The row the shipped procedure stores for an event. */
function rowOf(event: AuditEvent, id = 1): AuditRow {
  const d = describeEvent(event)
  return { id, time: new Date(event.time).toISOString(), type: event.type, username: event.username, ip: event.ip, session_id: event.sessionId, data: d.data, session_context: d.sessionContext }
}
const row = (type: AuditEventType, overrides: Partial<AuditEvent> = {}) => rowOf(auditEvent(type, { profile: { email: 'alice@example.org' }, ...overrides }))

describe('the ECS export', () => {
  it('writes a LOGIN as a successful authentication start with user, source and the parsed User-Agent', () => {
    const ecs = toEcs(row('LOGIN', { priorFailures: 2 }))
    expect(ecs).toMatchObject({
      '@timestamp': '2024-05-17T09:30:00.123Z',
      ecs: { version: '8.11.0' },
      event: { kind: 'event', category: ['authentication'], type: ['start'], action: 'login', outcome: 'success', dataset: 'authtrail.audit' },
      user: { name: 'alice', id: '1', email: 'alice@example.org' },
      source: { address: '203.0.113.7', ip: '203.0.113.7' },
      user_agent: { original: FIREFOX_33.toLowerCase(), name: 'FIREFOX', version: '33.0', os: { name: 'WINDOWS', version: 'nt 6.3' } },
      related: { user: ['alice'], ip: ['203.0.113.7'] },
      authtrail: { id: 1, type: 'LOGIN', session_id: '0123456789ABCDEF0123456789ABCDEF', prior_failures: 2 },
    })
    expect((ecs.event as { id: string }).id).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('writes LOGINERROR as a failure with its reason, and session ends and lockouts in their categories', () => {
    expect(toEcs(row('LOGINERROR')).event).toMatchObject({ category: ['authentication'], action: 'login-failure', outcome: 'failure', reason: 'Incorrect password.' })
    expect(toEcs(row('LOGOUT')).event).toMatchObject({ category: ['session'], type: ['end'], action: 'logout', outcome: 'success' })
    expect(toEcs(row('SESSIONTIMEOUT')).event).toMatchObject({ category: ['session'], type: ['end'], action: 'session-timeout' })
    const lockout = toEcs(row('LOCKOUT', { lockout: { scope: 'user', attempts: 5, windowSeconds: 900, until: Date.UTC(2026, 0, 1), enforced: true } }))
    expect(lockout.event).toMatchObject({ kind: 'alert', category: ['authentication'], type: ['info'], action: 'lockout' })
    expect(lockout.authtrail).toMatchObject({ lockout: { scope: 'user', attempts: 5, window_seconds: 900, until: '2026-01-01T00:00:00.000Z', enforced: true } })
  })

  it('writes LOGOUTERROR as a session end that failed, for the user still signed in, with the fixed reason', () => {
    const ecs = toEcs(row('LOGOUTERROR'))
    expect(ecs.event).toMatchObject({ kind: 'event', category: ['session'], type: ['end'], action: 'logout-failure', outcome: 'failure', reason: 'the session store did not save the logout; the session is still signed in' })
    expect(ecs).toMatchObject({ user: { name: 'alice' }, source: { ip: '203.0.113.7' }, authtrail: { type: 'LOGOUTERROR', session_id: '0123456789ABCDEF0123456789ABCDEF' } })
    // errorData/name is a login method, which a logout has none of.
    expect(ecs.authtrail).not.toHaveProperty('login_method')
    expect(toEdx(row('LOGOUTERROR')).event_type).toBe('authtrail.logouterror')
  })

  it('writes AUDIT_ACCESS as access to the audit trail, with what was done, and leaves the filter out of a pseudonymised export, ECS or edX', () => {
    const access = row('AUDIT_ACCESS', { username: 'admin', access: { action: 'export', filter: 'user=bob', rows: 12, channel: 'cli' } })
    const ecs = toEcs(access)
    expect(ecs.event).toMatchObject({ kind: 'event', category: ['database'], type: ['access'], action: 'audit-access', outcome: 'success' })
    expect(ecs.authtrail).toMatchObject({ type: 'AUDIT_ACCESS', access: { action: 'export', filter: 'user=bob', rows: 12, channel: 'cli' } })
    const pseudonymised = toEcs(access, createPseudonymizer(Buffer.from(KEY)))
    expect((pseudonymised.authtrail as { access: object }).access).toEqual({ action: 'export', rows: 12, channel: 'cli' })
    expect(JSON.stringify(pseudonymised)).not.toContain('bob')
    expect(JSON.stringify(toEdx(access, createPseudonymizer(Buffer.from(KEY))))).not.toContain('bob')
    expect((toEdx(access).event as { Filter: string }).Filter).toBe('user=bob')
  })

  it('sets source.ip only for a valid address and keeps anything else in source.address', () => {
    expect(toEcs(row('LOGINERROR', { ip: '::ffff:127.0.0.1' })).source).toEqual({ address: '::ffff:127.0.0.1', ip: '::ffff:127.0.0.1' })
    const spoofed = toEcs(row('LOGINERROR', { ip: '<script>, 10.0.0.1' }))
    expect(spoofed.source).toEqual({ address: '<script>, 10.0.0.1' })
    expect(spoofed.related).toEqual({ user: ['alice'] })
  })
})

describe('the Open edX export', () => {
  it('has exactly the tracking-log fields, UTC time and an authtrail event type', () => {
    const edx = toEdx(row('LOGINERROR'))
    expect(Object.keys(edx)).toEqual(['username', 'ip', 'referer', 'accept_language', 'event_source', 'event_type', 'event', 'agent', 'page', 'time', 'host', 'context'])
    expect(edx).toMatchObject({ username: 'alice', ip: '203.0.113.7', event_source: 'server', event_type: 'authtrail.loginerror', agent: FIREFOX_33.toLowerCase(), page: null, time: '2024-05-17T09:30:00.123Z' })
    expect(edx.event).toMatchObject({ SecurityLastExeption: 'Incorrect password.', errorData: { password: '', username: 'alice', name: 'FORM' } })
    expect(edx.context).toMatchObject({ user_id: '1', session: '0123456789ABCDEF0123456789ABCDEF' })
    expect(toEdx(row('LOGIN')).event_type).toBe('authtrail.login')
  })
})

describe('--pseudonymize', () => {
  const pseudonymize = createPseudonymizer(Buffer.from(KEY))
  const expected = createHmac('sha256', KEY).update('alice').digest('hex')

  it('replaces the username by HMAC-SHA256(key, username) in hex, the same in both formats, and leaves the real name nowhere', () => {
    for (const type of ['LOGIN', 'LOGINERROR', 'LOGOUT', 'LOGOUTERROR', 'SESSIONTIMEOUT', 'SESSIONEND', 'LOCKOUT'] as const) {
      const source = row(type, { message: 'user alice was refused', urlParams: [['next', '/home/alice']] })
      const ecs = toEcs(source, pseudonymize)
      const edx = toEdx(source, pseudonymize)
      expect((ecs.user as { name: string }).name, type).toBe(expected)
      expect(edx.username, type).toBe(expected)
      for (const record of [ecs, edx]) {
        expect(JSON.stringify(record), type).not.toMatch(/alice/i)
        expect(JSON.stringify(record), type).toContain(expected)
      }
      expect(JSON.stringify(ecs)).not.toContain('"1"')
    }
    expect(toEdx(row('LOGINERROR'), pseudonymize).event).toMatchObject({ errorData: { username: expected } })
  })

  // A user may be called like a word of the format: only what can hold the name is pseudonymised.
  for (const username of ['auth', 'login', '2026', 'audit']) {
    it(`leaves the format's constants, the times and what authtrail measured alone for a user named ${JSON.stringify(username)}`, () => {
      const pseudonym = createHmac('sha256', KEY).update(username).digest('hex')
      const named = (text: string) => text.replaceAll(username, pseudonym)
      for (const type of ['LOGIN', 'LOGINERROR', 'LOGOUT', 'LOGOUTERROR', 'SESSIONEND', 'LOCKOUT', 'AUDIT_GAP'] as const) {
        const source = row(type, {
          username,
          time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
          message: `user ${username} was refused`,
          lockout: { scope: 'user', attempts: 5, windowSeconds: 900, until: Date.UTC(2026, 0, 3), enforced: true },
          gap: { events: 3, from: Date.UTC(2026, 0, 1), to: Date.UTC(2026, 0, 2) },
        })

        const ecs = structuredClone(toEcs(source)) as Record<string, any>
        ecs.user = { name: pseudonym }
        ecs.related.user = [pseudonym]
        if (ecs.event.reason !== undefined) ecs.event.reason = named(ecs.event.reason)
        expect(toEcs(source, pseudonymize), `${type} as ECS`).toEqual(ecs)

        const edx = structuredClone(toEdx(source)) as Record<string, any>
        edx.username = pseudonym
        edx.context.user_id = ''
        const event = edx.event
        if (event.UserName !== undefined) event.UserName = pseudonym
        if (event.errorData !== undefined) event.errorData = { ...event.errorData, username: pseudonym, Message: named(event.errorData.Message) }
        for (const text of ['SecurityLastExeption', 'Reason']) if (event[text] !== undefined) event[text] = named(event[text])
        expect(toEdx(source, pseudonymize), `${type} as edX`).toEqual(edx)
      }
    })
  }

  it('gives another user another pseudonym and another key another pseudonym', () => {
    const bob = toEcs(row('LOGIN', { username: 'bob' }), pseudonymize).user as { name: string }
    expect(bob.name).toBe(createHmac('sha256', KEY).update('bob').digest('hex'))
    const other = toEcs(row('LOGIN'), createPseudonymizer(Buffer.from('another-key-0123456789abcdef0123456789'))).user as { name: string }
    expect(other.name).not.toBe(expected)
  })
})

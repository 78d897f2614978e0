import { describe, expect, it } from 'vitest'
import { createCsrf } from '../../src/review/admin-page/csrf.js'

describe('CSRF tokens of the audit page', () => {
  it('are accepted by every instance sharing the session key, and only for their session', () => {
    const key = Buffer.from('shared-session-key-0123456789abcdef')
    const [one, two] = [createCsrf(key), createCsrf(key)]
    const token = one.token('session-a')
    expect(two.verify('session-a', token)).toBe(true)
    expect(two.verify('session-b', token)).toBe(false)
    expect(two.verify('session-a', undefined)).toBe(false)
  })

  it('cannot be computed by anyone when session ids are raw (no key): each instance has a secret of its own', () => {
    const [one, two] = [createCsrf(Buffer.alloc(0)), createCsrf(Buffer.alloc(0))]
    expect(one.verify('session-a', one.token('session-a'))).toBe(true)
    expect(two.verify('session-a', one.token('session-a'))).toBe(false)
  })
})

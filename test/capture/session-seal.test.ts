import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createSessionSeal } from '../../src/capture/session-seal.js'

describe('session seal', () => {
  const seal = createSessionSeal(Buffer.from('a session key of some length, 0123456789'))

  it('unseals what it sealed, and never shows the id', () => {
    const id = randomBytes(24).toString('base64url')
    const sealed = seal.seal(id)
    expect(sealed).not.toContain(id)
    expect(seal.unseal(sealed)).toBe(id)
  })

  it('uses a fresh IV for every seal, across refills of its pool', () => {
    const ivs = new Set<string>()
    const count = 1000
    for (let i = 0; i < count; i++) {
      const sealed = seal.seal('the same id')
      ivs.add(Buffer.from(sealed.slice(3), 'base64url').subarray(0, 12).toString('hex'))
    }
    expect(ivs.size).toBe(count)
  })

  it('keeps each sealed text readable after the IV pool was refilled', () => {
    const early = Array.from({ length: 300 }, (_, i) => [`id-${i}`, seal.seal(`id-${i}`)] as const)
    for (let i = 0; i < 600; i++) seal.seal('filler')
    for (const [id, sealed] of early) expect(seal.unseal(sealed)).toBe(id)
  })

  it('refuses a text sealed under another key, or altered', () => {
    const sealed = seal.seal('store-id')
    expect(() => createSessionSeal(Buffer.from('another key entirely, 0123456789')).unseal(sealed)).toThrow()
    const bytes = Buffer.from(sealed.slice(3), 'base64url')
    bytes[bytes.length - 1]! ^= 1
    expect(() => seal.unseal(`v1:${bytes.toString('base64url')}`)).toThrow()
  })

  it('keeps ids raw, and says so, without a key', () => {
    const raw = createSessionSeal(Buffer.alloc(0))
    expect(raw.seal('store-id')).toBe('raw:store-id')
    expect(() => raw.unseal(seal.seal('store-id'))).toThrow(/raw/)
  })
})

import { describe, expect, it } from 'vitest'
import { decodeCursor, describeFilter, encodeCursor, FilterError, parseAuditFilter, parseDuration, parseNetwork } from '../../src/review/audit-filter.js'

const page = { label: (name: string) => name }
const cli = { label: (name: string) => `--${name}` }
const NOW = Date.UTC(2026, 10, 24, 12, 0, 0)

function errorOf(work: () => unknown): FilterError {
  try {
    work()
  } catch (err) {
    return err as FilterError
  }
  throw new Error('expected a FilterError')
}

describe('parseAuditFilter', () => {
  it('reads every filter from query-string style parameters', () => {
    const filter = parseAuditFilter(
      { type: ['login', 'LOGOUT,sessiontimeout'], user: 'alice', ip: '203.0.113.7', outcome: 'success', since: '2h', until: '2026-11-24T11:00:00Z', limit: '25' },
      { ...page, now: NOW },
    )
    expect(filter).toEqual({
      types: ['LOGIN', 'LOGOUT', 'SESSIONTIMEOUT'],
      user: 'alice',
      ip: '203.0.113.7',
      outcome: 'success',
      since: '2026-11-24T10:00:00.000Z',
      until: '2026-11-24T11:00:00.000Z',
      limit: 25,
    })
  })

  it('takes an address with a prefix length as a network, host bits dropped', () => {
    expect(parseAuditFilter({ ip: '10.1.2.3/8' }, page).network?.cidr).toBe('10.0.0.0/8')
    const v6 = parseNetwork('ip', '2001:db8:abcd::1/32')
    expect(v6.cidr).toBe('2001:db8::/32')
    expect(v6.family).toBe(6)
    expect(v6.first.toString('hex')).toBe('20010db8000000000000000000000000')
    expect(v6.last.toString('hex')).toBe('20010db8ffffffffffffffffffffffff')
    const host = parseNetwork('ip', '192.0.2.55/32')
    expect([host.first.toString('hex'), host.last.toString('hex')]).toEqual(['c0000237', 'c0000237'])
  })

  it('names the parameter as the caller spells it, and the value, for every bad input', () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ type: 'LOGN' }, 'type "LOGN"'],
      [{ ip: '10.0.0.0/33' }, 'ip "10.0.0.0/33"'],
      [{ ip: '10.1/8' }, 'ip "10.1/8"'],
      [{ ip: '0x0a.0.0.1/8' }, 'ip "0x0a.0.0.1/8"'],
      [{ outcome: 'maybe' }, 'outcome "maybe"'],
      [{ since: 'last tuesday' }, 'since "last tuesday"'],
      [{ until: '2026-13-45' }, 'until "2026-13-45"'],
      [{ limit: '0' }, 'limit "0"'],
      [{ limit: '1e3' }, 'limit "1e3"'],
      [{ before: 'not-a-cursor!' }, 'before "not-a-cursor!"'],
      [{ after: Buffer.from('["yesterday","1"]').toString('base64url') }, 'after "'],
      [{ outcome: 'success', type: 'LOGOUT' }, 'exclude each other'],
    ]
    for (const [params, expected] of cases) {
      const err = errorOf(() => parseAuditFilter(params, page))
      expect(err).toBeInstanceOf(FilterError)
      expect(err.message).toContain(expected)
    }
    expect(errorOf(() => parseAuditFilter({ type: 'LOGN' }, cli)).message).toContain('--type "LOGN"')
    expect(errorOf(() => parseAuditFilter({ user: 'x'.repeat(2000) }, page)).message).toContain('longer than 1024')
  })

  it('reads a date alone as midnight UTC, and a time only with its zone, in any server zone', () => {
    const since = (value: string) => parseAuditFilter({ since: value }, { ...page, now: NOW }).since
    expect(since('2026-01-10')).toBe('2026-01-10T00:00:00.000Z')
    expect(since('2026-01-10T08:00Z')).toBe('2026-01-10T08:00:00.000Z')
    expect(since('2026-01-10 08:00:30.25+01:00')).toBe('2026-01-10T07:00:30.250Z')
    expect(since('2026-01-10T08:00:30.123456-0500')).toBe('2026-01-10T13:00:30.123Z')
    const zoneless = errorOf(() => parseAuditFilter({ since: '2026-01-10T08:00' }, page))
    expect(zoneless).toBeInstanceOf(FilterError)
    expect(zoneless.message).toBe('since "2026-01-10T08:00": add the time\'s zone, Z for UTC or an offset like +01:00 (the audit trail\'s times are UTC)')
  })

  it('refuses dates that do not exist and ages beyond what a date can hold, as filter errors', () => {
    for (const value of ['2026-02-30', '2026-02-29T00:00Z', '2026-04-31T10:00Z']) {
      const err = errorOf(() => parseAuditFilter({ until: value }, page))
      expect(err).toBeInstanceOf(FilterError)
      expect(err.message).toContain(`until "${value}": there is no such date`)
    }
    expect(parseAuditFilter({ since: '2028-02-29' }, page).since).toBe('2028-02-29T00:00:00.000Z')
    for (const value of ['99999999999999d', '999999999d']) {
      const err = errorOf(() => parseAuditFilter({ since: value }, page))
      expect(err).toBeInstanceOf(FilterError)
      expect(err.message).toContain(`since "${value}"`)
    }
    expect(errorOf(() => parseDuration('older-than', '999999999d'))).toBeInstanceOf(FilterError)
    expect(parseDuration('older-than', '100000d')).toBe(100_000 * 86_400_000)
  })

  it('refuses before and after together', () => {
    const cursor = encodeCursor({ time: '2026-11-24T10:00:00.123456Z', id: '42' })
    expect(errorOf(() => parseAuditFilter({ before: cursor, after: cursor }, page)).message).toContain('before and after exclude each other')
  })

  it('round-trips a cursor with microseconds and refuses anything it did not make', () => {
    const cursor = { time: '2026-11-24T10:00:00.123456Z', id: '9007199254740993' }
    expect(decodeCursor('before', encodeCursor(cursor))).toEqual(cursor)
    for (const forged of ['', 'eyJ9', Buffer.from('[1,2]').toString('base64url'), Buffer.from('["2026-11-24T10:00:00Z","-1"]').toString('base64url')]) {
      expect(() => decodeCursor('before', forged)).toThrow(FilterError)
    }
  })

  it('ignores empty parameters, as an unfilled form field sends them', () => {
    expect(parseAuditFilter({ user: '', ip: ' ', type: [], since: '' }, page)).toEqual({ limit: 100 })
  })

  it('describes a filter as one line of JSON for the audit trail', () => {
    const filter = parseAuditFilter({ user: '<script>', ip: '10.0.0.0/8' }, page)
    expect(JSON.parse(describeFilter(filter, { view: 'events' }))).toEqual({ view: 'events', user: '<script>', limit: 100, network: '10.0.0.0/8' })
  })
})

import { describe, expect, it } from 'vitest'
import { XMLParser } from 'fast-xml-parser'
import { createClientInfoParser, parseClientInfo, UNDEFINED } from '../../src/describe/client-info.js'
import type { ClientInfo } from '../../src/describe/client-info.js'
import { buildDataXml, createDescriber } from '../../src/describe/event-xml.js'
import type { AuditEvent } from '../../src/types.js'

const parser = new XMLParser({ parseTagValue: false })

function loginEvent(userAgent: string): AuditEvent {
  return {
    id: 'evt-1',
    type: 'LOGIN',
    time: Date.UTC(2024, 0, 2, 3, 4, 5),
    sessionId: '0123456789ABCDEF0123456789ABCDEF',
    username: 'alice',
    userId: '1',
    ip: '127.0.0.1',
    host: '127.0.0.1',
    userAgent,
    method: '',
    message: '',
    urlParams: [],
    profile: {},
  }
}

/** The two User-Agents of the Showcase seed document, with the values Showcase wrote for them. */
const SEEDS = [
  {
    client: 'Firefox 33 on Windows 8.1 (Showcase seed)',
    ua: 'Mozilla/5.0 (Windows NT 6.3; WOW64; rv:33.0) Gecko/20100101 Firefox/33.0',
    expected: { browser: 'FIREFOX', browserVersion: '33.0', os: 'WINDOWS', osVersion: 'nt 6.3' },
  },
  {
    client: 'Chrome 58 on Windows 8.1 (Showcase seed)',
    ua: 'Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/58.0.3029.110 Safari/537.36',
    expected: { browser: 'CHROME', browserVersion: '58.0.3029.110', os: 'WINDOWS', osVersion: 'nt 6.3' },
  },
] as const

describe('the Showcase seed User-Agents', () => {
  it.each(SEEDS)('$client parses exactly as Showcase reported it', ({ ua, expected }) => {
    expect(parseClientInfo(ua)).toEqual(expected)
  })

  it.each(SEEDS)('$client gives the seed values in the LOGIN <data> document, with the User-Agent lowercased', ({ ua, expected }) => {
    const data = parser.parse(buildDataXml(loginEvent(ua), parseClientInfo(ua))).data
    expect({ Browser: data.Browser, BrowserVersion: data.BrowserVersion, OS: data.OS, OSVersion: data.OSVersion, UserAgent: data.UserAgent }).toEqual({
      Browser: expected.browser,
      BrowserVersion: expected.browserVersion,
      OS: expected.os,
      OSVersion: expected.osVersion,
      UserAgent: ua.toLowerCase(),
    })
  })

  it.each(SEEDS)('$client gives the same <data> through the describer as through buildDataXml', ({ ua }) => {
    const event = loginEvent(ua)
    expect(createDescriber()(event).data).toBe(buildDataXml(event, parseClientInfo(ua)))
  })
})

interface Row {
  /** What sent the User-Agent, in words. */
  readonly client: string
  readonly ua: string
  readonly browser: string
  /** This and the versions are asserted only when given. */
  readonly os?: string
  readonly browserVersion?: string
  readonly osVersion?: string
}

/**
 * Real User-Agent strings, as sent by the named clients. Windows 11 sends the same `Windows NT 10.0` token
 * as Windows 10, and iPadOS Safari in its default desktop mode is indistinguishable from macOS Safari, so
 * those rows expect what the header can tell.
 */
const TABLE: readonly Row[] = [
  // Desktop, Windows
  { client: 'Chrome 124 on Windows 10', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', browser: 'CHROME', browserVersion: '124.0.0.0', os: 'WINDOWS', osVersion: 'nt 10.0' },
  { client: 'Firefox 125 on Windows 10', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0', browser: 'FIREFOX', browserVersion: '125.0', os: 'WINDOWS', osVersion: 'nt 10.0' },
  { client: 'Edge 124 on Windows 11', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51', browser: 'EDGE', browserVersion: '124.0.2478.51', os: 'WINDOWS', osVersion: 'nt 10.0' },
  { client: 'Opera 109 on Windows 11', ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0', browser: 'OPERA', browserVersion: '109.0.0.0', os: 'WINDOWS', osVersion: 'nt 10.0' },
  { client: 'Internet Explorer 11 on Windows 7', ua: 'Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko', browser: 'IE', browserVersion: '11.0', os: 'WINDOWS', osVersion: 'nt 6.1' },
  // Desktop, macOS
  { client: 'Safari 17.4 on macOS', ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15', browser: 'SAFARI', browserVersion: '17.4.1', os: 'MAC', osVersion: '10.15.7' },
  { client: 'Chrome 124 on macOS', ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', browser: 'CHROME', browserVersion: '124.0.0.0', os: 'MAC', osVersion: '10.15.7' },
  { client: 'Firefox 125 on macOS 14', ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0', browser: 'FIREFOX', browserVersion: '125.0', os: 'MAC', osVersion: '14.4' },
  { client: 'Edge 124 on macOS', ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51', browser: 'EDGE', browserVersion: '124.0.2478.51', os: 'MAC', osVersion: '10.15.7' },
  // Desktop, Linux
  { client: 'Firefox 125 on Ubuntu', ua: 'Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0', browser: 'FIREFOX', browserVersion: '125.0', os: 'LINUX' },
  { client: 'Chromium 83 on Ubuntu', ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/83.0.4103.61 Chrome/83.0.4103.61 Safari/537.36', browser: 'CHROME', browserVersion: '83.0.4103.61', os: 'LINUX' },
  { client: 'Chrome 124 on X11 Linux', ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', browser: 'CHROME', browserVersion: '124.0.0.0', os: 'LINUX' },
  { client: 'Firefox 125 on X11 Linux', ua: 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0', browser: 'FIREFOX', browserVersion: '125.0', os: 'LINUX' },
  { client: 'Opera 109 on X11 Linux', ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36 OPR/109.0.0.0', browser: 'OPERA', browserVersion: '109.0.0.0', os: 'LINUX' },
  { client: 'Chrome 124 on ChromeOS', ua: 'Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36', browser: 'CHROME', browserVersion: '124.0.0.0', os: 'CHROMEOS' },
  { client: 'headless Chrome 124 on Linux', ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.6367.60 Safari/537.36', browser: 'CHROME_HEADLESS', browserVersion: '124.0.6367.60', os: 'LINUX' },
  // Mobile, iOS
  { client: 'Safari on iPhone (iOS 17.4.1)', ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1', browser: 'SAFARI', browserVersion: '17.4.1', os: 'IOS', osVersion: '17.4.1' },
  { client: 'Safari on iPad (iPadOS 16.6, mobile mode)', ua: 'Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1', browser: 'SAFARI', browserVersion: '16.6', os: 'IOS', osVersion: '16.6' },
  { client: 'Chrome on iPhone', ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1', browser: 'CHROME', browserVersion: '124.0.6367.88', os: 'IOS', osVersion: '17.4' },
  // Mobile, Android
  { client: 'Chrome 124 on Android (reduced UA)', ua: 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36', browser: 'CHROME', browserVersion: '124.0.6367.82', os: 'ANDROID', osVersion: '10' },
  { client: 'Chrome 116 on a Pixel 7', ua: 'Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/116.0.0.0 Mobile Safari/537.36', browser: 'CHROME', browserVersion: '116.0.0.0', os: 'ANDROID', osVersion: '13' },
  { client: 'Samsung Internet 24 on a Galaxy S23', ua: 'Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36', browser: 'SAMSUNG', browserVersion: '24.0', os: 'ANDROID', osVersion: '13' },
  { client: 'Firefox 125 on Android 14', ua: 'Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0', browser: 'FIREFOX', browserVersion: '125.0', os: 'ANDROID', osVersion: '14' },
  { client: 'Edge 124 on Android', ua: 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64', browser: 'EDGE', browserVersion: '124.0.2478.64', os: 'ANDROID', osVersion: '10' },
  // Command-line tools and HTTP libraries
  { client: 'curl 8.5', ua: 'curl/8.5.0', browser: 'CURL', browserVersion: '8.5.0', os: UNDEFINED, osVersion: '' },
  { client: 'GNU Wget 1.21', ua: 'Wget/1.21.4', browser: 'WGET', browserVersion: '1.21.4', os: UNDEFINED, osVersion: '' },
  { client: 'python-requests 2.31', ua: 'python-requests/2.31.0', browser: 'PYTHON_REQUESTS', browserVersion: '2.31.0', os: UNDEFINED, osVersion: '' },
  { client: 'Go net/http over HTTP/1.1', ua: 'Go-http-client/1.1', browser: 'GO_HTTP_CLIENT', browserVersion: '1.1', os: UNDEFINED, osVersion: '' },
  { client: 'Go net/http over HTTP/2', ua: 'Go-http-client/2.0', browser: 'GO_HTTP_CLIENT', browserVersion: '2.0', os: UNDEFINED, osVersion: '' },
  { client: 'OkHttp 4.12', ua: 'okhttp/4.12.0', browser: 'OKHTTP', browserVersion: '4.12.0', os: UNDEFINED, osVersion: '' },
  { client: 'Postman 7.37', ua: 'PostmanRuntime/7.37.3', browser: 'POSTMAN', browserVersion: '7.37.3', os: UNDEFINED, osVersion: '' },
  // Crawlers. The current Googlebot and bingbot strings embed a Chrome token; a crawler is still a BOT, not a
  // browser. The smartphone Googlebot also claims Android, which is defensible either way, so its os is not asserted.
  { client: 'Googlebot (classic)', ua: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', browser: 'BOT', browserVersion: '2.1', os: UNDEFINED },
  { client: 'Googlebot smartphone', ua: 'Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.118 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)', browser: 'BOT', browserVersion: '2.1' },
  { client: 'bingbot (classic)', ua: 'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)', browser: 'BOT', browserVersion: '2.0', os: UNDEFINED },
  { client: 'bingbot (evergreen)', ua: 'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36', browser: 'BOT', browserVersion: '2.0', os: UNDEFINED },
  // No header at all
  { client: 'a request without a User-Agent', ua: '', browser: UNDEFINED, browserVersion: '', os: UNDEFINED, osVersion: '' },
]

/** The fields a row asserts. */
function expectedOf(row: Row): Partial<ClientInfo> {
  const expected: { -readonly [K in keyof ClientInfo]?: string } = { browser: row.browser }
  if (row.browserVersion !== undefined) expected.browserVersion = row.browserVersion
  if (row.os !== undefined) expected.os = row.os
  if (row.osVersion !== undefined) expected.osVersion = row.osVersion
  return expected
}

function pick(info: ClientInfo, keys: ReadonlyArray<keyof ClientInfo>): Partial<ClientInfo> {
  return Object.fromEntries(keys.map((key) => [key, info[key]]))
}

describe('User-Agents of real clients', () => {
  it('the table covers at least 24 distinct User-Agents', () => {
    expect(new Set(TABLE.map((row) => row.ua)).size).toBe(TABLE.length)
    expect(TABLE.length).toBeGreaterThanOrEqual(24)
  })

  it.each(TABLE)('$client is reported as $browser', (row) => {
    const expected = expectedOf(row)
    const actual = parseClientInfo(row.ua)
    expect(pick(actual, Object.keys(expected) as Array<keyof ClientInfo>)).toEqual(expected)
  })

  it.each(TABLE)('$client gives exactly the four fields, with Showcase-style upper-case names', ({ ua }) => {
    const info = parseClientInfo(ua)
    expect(Object.keys(info).sort()).toEqual(['browser', 'browserVersion', 'os', 'osVersion'])
    // Names are Showcase-style identifiers, so a procedure can compare them with '='.
    expect(info.browser).toMatch(/^[A-Z0-9_]+$/)
    expect(info.os).toMatch(/^[A-Z0-9_]+$/)
  })
})

describe('a long hostile User-Agent', () => {
  it('is read for its first 512 characters, as ua-parser-js reads its own 500', () => {
    for (const unit of ['a-', '-a', 'bot-', 'a b']) {
      const header = unit.repeat(65536 / unit.length)
      expect(parseClientInfo(header)).toEqual(parseClientInfo(header.slice(0, 512)))
    }
    expect(parseClientInfo(`${'x'.repeat(600)} Googlebot/2.1`).browser).toBe(UNDEFINED)
    expect(parseClientInfo(`Mozilla/5.0 (compatible; Googlebot/2.1; ${'x'.repeat(600)})`)).toMatchObject({ browser: 'BOT', browserVersion: '2.1' })
  })
})

describe('the cached parser of createClientInfoParser', () => {
  const distinct = TABLE.map((row) => row.ua).filter((ua) => ua !== '').slice(0, 10)

  it('gives the same result on a repeated User-Agent as the uncached parser', () => {
    const parse = createClientInfoParser()
    for (const ua of distinct) {
      const first = parse(ua)
      const second = parse(ua)
      expect(second).toEqual(first)
      expect(second).toEqual(parseClientInfo(ua))
    }
  })

  it('keeps giving correct results when far more distinct User-Agents arrive than it may hold', () => {
    expect(distinct).toHaveLength(10)
    const parse = createClientInfoParser(3)
    for (let round = 0; round < 3; round++) {
      for (const ua of distinct) expect(parse(ua)).toEqual(parseClientInfo(ua))
    }
  })

  // A cache hit returns the very object stored, a miss parses anew: object identity shows what was kept.
  it('holds at most cacheSize entries, dropping the least recently used', () => {
    const [a, b, c, d] = distinct as [string, string, string, string]
    const parse = createClientInfoParser(3)
    const first = { a: parse(a), b: parse(b), c: parse(c) }
    expect(parse(a)).toBe(first.a) // hit: a becomes the most recently used
    parse(d) // a fourth entry: b, the least recently used, goes
    expect(parse(a)).toBe(first.a)
    expect(parse(c)).toBe(first.c)
    const again = parse(b)
    expect(again).not.toBe(first.b)
    expect(again).toEqual(first.b)
  })

  it('forgets every entry after cacheSize other User-Agents, so memory stays bounded', () => {
    const parse = createClientInfoParser(3)
    const first = distinct.slice(0, 3).map((ua) => parse(ua))
    for (const ua of distinct.slice(3)) parse(ua)
    distinct.slice(0, 3).forEach((ua, i) => {
      const info = parse(ua)
      expect(info).not.toBe(first[i])
      expect(info).toEqual(first[i])
    })
  })

  it('keeps separate caches for separate parsers', () => {
    const [ua] = distinct as [string]
    const one = createClientInfoParser()
    const two = createClientInfoParser()
    expect(two(ua)).not.toBe(one(ua))
    expect(two(ua)).toEqual(one(ua))
  })
})

import UAParser from 'ua-parser-js'

/** Browser and operating system in Showcase's vocabulary, parsed from a User-Agent. */
export interface ClientInfo {
  /** FIREFOX, CHROME, SAFARI, OPERA, IE (Showcase's names), EDGE, SAMSUNG, CURL, BOT, ... or UNDEFINED. */
  readonly browser: string
  readonly browserVersion: string
  /** WINDOWS, MAC, UNIX, ANDROID (Showcase's names), IOS, LINUX, CHROMEOS, ... or UNDEFINED. */
  readonly os: string
  /** For Windows the `nt x.y` token of the User-Agent, as Showcase wrote it; otherwise the parsed version. */
  readonly osVersion: string
}

export const UNDEFINED = 'UNDEFINED'

/** ua-parser-js names that map onto a Showcase name; others are upper-cased. */
const BROWSER_NAMES: Readonly<Record<string, string>> = {
  'Chrome': 'CHROME',
  'Chrome WebView': 'CHROME',
  'Chromium': 'CHROME',
  'Chrome Headless': 'CHROME_HEADLESS',
  'Firefox': 'FIREFOX',
  'Mobile Firefox': 'FIREFOX',
  'Firefox Focus': 'FIREFOX',
  'Safari': 'SAFARI',
  'Mobile Safari': 'SAFARI',
  'Opera': 'OPERA',
  'Opera Mini': 'OPERA',
  'Opera Mobi': 'OPERA',
  'Opera Touch': 'OPERA',
  'Opera GX': 'OPERA',
  'IE': 'IE',
  'IEMobile': 'IE',
  'Edge': 'EDGE',
  'Samsung Browser': 'SAMSUNG',
  'Samsung Internet': 'SAMSUNG',
  'Yandex': 'YANDEX',
  'UCBrowser': 'UC',
}

const OS_NAMES: Readonly<Record<string, string>> = {
  'Windows': 'WINDOWS',
  'Mac OS': 'MAC',
  'macOS': 'MAC',
  'iOS': 'IOS',
  'Android': 'ANDROID',
  'Linux': 'LINUX',
  'Ubuntu': 'LINUX',
  'Debian': 'LINUX',
  'Fedora': 'LINUX',
  'Arch': 'LINUX',
  'CentOS': 'LINUX',
  'Gentoo': 'LINUX',
  'Mint': 'LINUX',
  'RedHat': 'LINUX',
  'SUSE': 'LINUX',
  'Chrome OS': 'CHROMEOS',
  'Chromium OS': 'CHROMEOS',
  'FreeBSD': 'UNIX',
  'OpenBSD': 'UNIX',
  'NetBSD': 'UNIX',
  'Solaris': 'UNIX',
  'AIX': 'UNIX',
  'HP-UX': 'UNIX',
  'Windows Phone': 'WINDOWS_PHONE',
}

/**
 * Clients that ua-parser-js 1.x does not name: command-line tools, HTTP libraries and crawlers.
 * Checked only when the parser found no browser, in this order.
 */
const TOOLS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\bcurl\/([\w.]+)/i, 'CURL'],
  [/\bwget\/([\w.]+)/i, 'WGET'],
  [/\bpython-requests\/([\w.]+)/i, 'PYTHON_REQUESTS'],
  [/\bpython-urllib\/([\w.]+)/i, 'PYTHON_URLLIB'],
  [/\bgo-http-client\/([\w.]+)/i, 'GO_HTTP_CLIENT'],
  [/\bokhttp\/([\w.]+)/i, 'OKHTTP'],
  [/\bpostmanruntime\/([\w.]+)/i, 'POSTMAN'],
  [/\b(?:node-fetch|undici)\/?([\w.]*)/i, 'NODE'],
  [/\b[\w-]{0,64}(?:bot|crawler|spider|slurp)\b[^/\s;]{0,64}\/?([\w.]*)/i, 'BOT'],
]

/**
 * A crawler naming itself with a version (`Googlebot/2.1`, `bingbot/2.0`, `Applebot/0.1`). Checked
 * before the parser's answer: today's crawlers also carry Chrome or Safari tokens, and a security team
 * wants them told apart from people.
 */
const CRAWLER = /\b([\w-]{0,64}(?:bot|crawler|spider))\/(\d[\w.]*)/i

/**
 * How much of a User-Agent is parsed: what ua-parser-js reads itself (500). The patterns above start a
 * match at every word boundary; on a long hostile header (`a-a-a-…`, and useragent.maxlength may be up
 * to 64 KB) that took time growing with the square of its length: 12 s for 64 KB.
 */
const PARSED_LENGTH = 512

const WINDOWS_NT = /windows nt (\d+(?:\.\d+)?)/i

function upperName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]+/g, '_').replace(/^_|_$/g, '') || UNDEFINED
}

/** Parses one User-Agent; pure, no cache. */
export function parseClientInfo(header: string): ClientInfo {
  if (header === '') return { browser: UNDEFINED, browserVersion: '', os: UNDEFINED, osVersion: '' }
  const userAgent = header.slice(0, PARSED_LENGTH)
  const result = new UAParser(userAgent).getResult()
  const crawler = CRAWLER.exec(userAgent)
  let browser = crawler ? 'BOT' : result.browser.name ? BROWSER_NAMES[result.browser.name] ?? upperName(result.browser.name) : UNDEFINED
  let browserVersion = crawler ? crawler[2] ?? '' : result.browser.version ?? ''
  if (browser === UNDEFINED) {
    for (const [pattern, name] of TOOLS) {
      const match = pattern.exec(userAgent)
      if (match) {
        browser = name
        browserVersion = match[1] ?? ''
        break
      }
    }
  }
  const os = result.os.name ? OS_NAMES[result.os.name] ?? upperName(result.os.name) : UNDEFINED
  let osVersion = result.os.version ?? ''
  if (os === 'WINDOWS') {
    // Showcase wrote the kernel token ("nt 6.3"), not the marketing name ("8.1"); keep it comparable.
    const nt = WINDOWS_NT.exec(userAgent)
    if (nt) osVersion = `nt ${nt[1]}`
  }
  return { browser, browserVersion, os, osVersion }
}

/**
 * A parser with a bounded cache: most logins come from a few thousand distinct User-Agents, and parsing
 * is the costliest part of describing an event. Each authtrail instance owns its own cache.
 */
export function createClientInfoParser(cacheSize = 2000): (userAgent: string) => ClientInfo {
  const cache = new Map<string, ClientInfo>()
  return (userAgent) => {
    const hit = cache.get(userAgent)
    if (hit) {
      // Re-insert so that the Map's insertion order is least-recently-used first.
      cache.delete(userAgent)
      cache.set(userAgent, hit)
      return hit
    }
    const info = parseClientInfo(userAgent)
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string)
    cache.set(userAgent, info)
    return info
  }
}

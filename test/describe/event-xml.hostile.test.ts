import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { PGlite } from '@electric-sql/pglite'
import type { ClientInfo } from '../../src/describe/client-info.js'
import { buildDataXml, buildSessionContextXml } from '../../src/describe/event-xml.js'
import { toXmlChars, truncate } from '../../src/describe/xml-text.js'
import { userAgentOf } from '../../src/capture/request-facts.js'
import { AUDIT_EVENT_TYPES } from '../../src/types.js'
import type { AuditEvent, AuditEventType } from '../../src/types.js'
import { auditEvent } from '../helpers/audit-event.js'
import { elementsOf, expectedData, expectedSessionContext, PROFILE_FIELDS, startTags, viaFxp, xmlSafe } from '../helpers/xml-oracle.js'

// ---------------------------------------------------------------------------------------------------------
// Hostile values
// ---------------------------------------------------------------------------------------------------------

const ALL_C0 = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)).join('')
const HUNDRED_KB = 100 * 1024
const BIG_UNIT = 'Mozilla/5.0 <b>&amp;</b>\r\n\t\u0000\u0007\uFFFE😀]]> '
const BIG = BIG_UNIT.repeat(Math.ceil(HUNDRED_KB / BIG_UNIT.length))

const HOSTILE = [
  { label: 'markup closing its own element', value: '</UserAgent><IP>1.2.3.4</IP>' },
  { label: 'a bare ampersand', value: '&' },
  { label: 'an already-escaped entity', value: '&amp;' },
  { label: 'a CDATA section', value: '<![CDATA[x]]>' },
  { label: 'a CDATA terminator', value: ']]>' },
  { label: 'double and single quotes', value: `"double" 'single' \`back\`` },
  { label: 'a NUL character', value: 'a\u0000b' },
  { label: 'every C0 control character', value: ALL_C0 },
  { label: 'the noncharacters U+FFFE and U+FFFF', value: 'a\uFFFEb\uFFFFc' },
  { label: 'a lone high surrogate', value: 'a\uD800b' },
  { label: 'a lone low surrogate', value: 'a\uDC00b' },
  { label: 'emoji outside the Basic Multilingual Plane', value: '😀 👩‍💻 𝔘' },
  { label: 'a CR', value: 'a\rb' },
  { label: 'a CRLF', value: 'a\r\nb' },
  { label: 'a tab', value: 'a\tb' },
  { label: 'a 100 KB string', value: BIG },
  { label: 'a script element', value: '<script>alert(1)</script>' },
  { label: 'an XML declaration', value: '<?xml version="1.0" encoding="UTF-8"?>' },
  { label: 'a processing instruction and a comment', value: '<?php echo 1 ?><!-- x -->' },
  { label: 'an internal DTD declaring an entity', value: '<!DOCTYPE x [<!ENTITY e "boom">]>&e;' },
  {
    label: 'everything at once',
    value: '</UserAgent><IP>1.2.3.4</IP> & &amp; <![CDATA[x]]> ]]> "q" \'s\' ' + ALL_C0 + ' \uFFFE\uFFFF \uD800 😀 \r \r\n \t <?xml version="1.0"?><script>alert(1)</script>',
  },
] as const

const TIME = Date.UTC(2024, 4, 6, 7, 8, 9, 10)

/** The shared test event with this file's fixed id, time and address. */
const baseEvent = (type: AuditEventType, overrides: Partial<AuditEvent> = {}): AuditEvent =>
  auditEvent(type, { id: '7d444840-9dc0-11d1-b245-5ffdce74fad2', time: TIME, ip: '10.0.0.1', host: '10.0.0.1', ...overrides })


/** Every text field of the event (and its profile and query parameters) carries `value`. */
function hostileEvent(type: AuditEventType, value: string): AuditEvent {
  return baseEvent(type, {
    id: value,
    sessionId: value,
    username: value,
    userId: value,
    ip: value,
    host: value,
    userAgent: value,
    method: value,
    message: value,
    urlParams: [[value, value], ['next', value]],
    profile: Object.fromEntries(PROFILE_FIELDS.map((field) => [field, value])),
    access: { action: 'view', filter: value, rows: 3, channel: 'web' },
  })
}

/** The builders take the parsed client as an argument; make it hostile too. */
function hostileClient(value: string): ClientInfo {
  return { browser: value, browserVersion: value, os: value, osVersion: value }
}

const BUILDERS = [
  { name: '<data>', root: 'data', build: buildDataXml, expected: expectedData },
  { name: '<sessioncontext>', root: 'sessioncontext', build: buildSessionContextXml, expected: expectedSessionContext },
] as const

const parser = new XMLParser({ parseTagValue: false, processEntities: true, htmlEntities: false, trimValues: false })
/** Decodes numeric character references as well; used only to show the CR round trip. */
const decodingParser = new XMLParser({ parseTagValue: false, processEntities: true, htmlEntities: true, trimValues: false })

const sorted = (names: string[]) => [...names].sort()

// ---------------------------------------------------------------------------------------------------------
// PostgreSQL (PGlite): one in-memory instance for the file
// ---------------------------------------------------------------------------------------------------------

let db: PGlite

beforeAll(async () => {
  db = await PGlite.create()
})
afterAll(async () => {
  await db?.close()
})

async function pgIsDocument(xml: string): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>('SELECT $1::xml IS DOCUMENT AS ok', [xml])
  return rows[0]!.ok
}

async function pgWellFormed(xml: string): Promise<boolean> {
  const { rows } = await db.query<{ ok: boolean }>('SELECT xml_is_well_formed_document($1) AS ok', [xml])
  return rows[0]!.ok
}

async function pgElementCount(xml: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT (xpath('count(//*)', $1::xml))[1]::text::int AS n`, [xml])
  return rows[0]!.n
}

/** The text of `path` under `rowPath`, read by PostgreSQL's XMLTABLE (libxml2 decodes `&#13;` to CR). */
async function pgText(xml: string, rowPath: string, path: string): Promise<string | null> {
  const { rows } = await db.query<{ v: string | null }>(
    'SELECT x.v FROM XMLTABLE(($2::text) PASSING CAST($1::text AS xml) COLUMNS v text PATH $3::text) AS x',
    [xml, rowPath, path],
  )
  expect(rows).toHaveLength(1)
  return rows[0]!.v
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

describe('the oracle', () => {
  it.each(HOSTILE)('toXmlChars agrees with the XML 1.0 Char production on $label', ({ value }) => {
    expect(toXmlChars(value)).toBe(xmlSafe(value))
  })
})

for (const builder of BUILDERS) {
  for (const type of AUDIT_EVENT_TYPES) {
    describe(`${builder.name} of ${type} with a hostile value in every field`, () => {
      it.each(HOSTILE)('$label stays text in a well-formed document', ({ value }) => {
        const event = hostileEvent(type, value)
        const client = hostileClient(value)
        const xml = builder.build(event, client)
        const expected = builder.expected(event, client, viaFxp)

        expect(XMLValidator.validate(xml)).toBe(true)
        // The root comes first: no XML declaration, no injected prolog.
        expect(xml.startsWith(`<${builder.root}>`)).toBe(true)
        expect(xml.endsWith(`</${builder.root}>`)).toBe(true)
        // Exactly the expected elements, each as often as expected: nothing injected.
        expect(sorted(startTags(xml))).toEqual(sorted(elementsOf(builder.root, expected)))
        // A raw CR would be normalised to LF by any XML parser.
        expect(xml).not.toContain('\r')
        expect(parser.parse(xml)).toEqual({ [builder.root]: expected })
      })

      it.each(HOSTILE)('$label gives a document PostgreSQL accepts with the same elements', async ({ value }) => {
        const event = hostileEvent(type, value)
        const client = hostileClient(value)
        const xml = builder.build(event, client)
        expect(await pgIsDocument(xml)).toBe(true)
        expect(await pgWellFormed(xml)).toBe(true)
        expect(await pgElementCount(xml)).toBe(elementsOf(builder.root, builder.expected(event, client, xmlSafe)).length)
      })
    })
  }
}

describe('PostgreSQL reads the hostile text back intact', () => {
  it.each(HOSTILE)('$label in a LOGIN User-Agent comes back from /data/UserAgent lowercased, illegal characters replaced', async ({ value }) => {
    const xml = buildDataXml(hostileEvent('LOGIN', value), hostileClient(value))
    expect(await pgText(xml, '/data', 'UserAgent')).toBe(xmlSafe(value.toLowerCase()))
    expect(await pgText(xml, '/data', 'UserName')).toBe(xmlSafe(value))
    expect(await pgText(xml, '/data', 'IP')).toBe(xmlSafe(value))
  })

  it.each(HOSTILE)('$label in a LOGINERROR comes back from errorData, with the password element empty', async ({ value }) => {
    const xml = buildDataXml(hostileEvent('LOGINERROR', value), hostileClient(value))
    expect(await pgText(xml, '/data/errorData', 'username')).toBe(xmlSafe(value))
    expect(await pgText(xml, '/data/errorData', 'Message')).toBe(xmlSafe(value))
    expect(await pgText(xml, '/data/errorData', 'password')).toBe('')
  })

  it.each(HOSTILE)('$label in the profile, address and query comes back from <sessioncontext>', async ({ value }) => {
    const xml = buildSessionContextXml(hostileEvent('LOGIN', value), hostileClient(value))
    expect(await pgText(xml, '/sessioncontext', 'email')).toBe(xmlSafe(value))
    expect(await pgText(xml, '/sessioncontext', 'ip')).toBe(xmlSafe(value))
    expect(await pgText(xml, '/sessioncontext/urlparams', 'urlparam[1]/name')).toBe(xmlSafe(value))
    expect(await pgText(xml, '/sessioncontext/urlparams', 'urlparam[2]/value')).toBe(xmlSafe(value))
  })
})

describe('named attacks', () => {
  it('a User-Agent closing its own element stays text, and the document keeps one IP element', async () => {
    const ua = '</UserAgent><IP>1.2.3.4</IP>'
    const xml = buildDataXml(baseEvent('LOGIN', { userAgent: ua }), hostileClient('x'))
    const data = parser.parse(xml).data
    expect(data.IP).toBe('10.0.0.1')
    expect(data.UserAgent).toBe(ua.toLowerCase())
    expect(startTags(xml).filter((name) => name.toLowerCase() === 'ip')).toEqual(['IP'])
    const { rows } = await db.query<{ n: string }>(`SELECT (xpath('count(/data/IP)', $1::xml))[1]::text AS n`, [xml])
    expect(rows[0]!.n).toBe('1')
  })

  it('a username carrying a script element and an XML declaration produces neither', async () => {
    const username = '<?xml version="1.0" encoding="UTF-8"?><script>alert(1)</script>'
    for (const type of AUDIT_EVENT_TYPES) {
      const event = baseEvent(type, { username })
      for (const xml of [buildDataXml(event, hostileClient('x')), buildSessionContextXml(event, hostileClient('x'))]) {
        expect(xml).not.toMatch(/<script/i)
        expect(xml).not.toMatch(/<\?xml/)
        expect(startTags(xml)).not.toContain('script')
        const { rows } = await db.query<{ n: string }>(`SELECT (xpath('count(//script)', $1::xml))[1]::text AS n`, [xml])
        expect(rows[0]!.n).toBe('0')
      }
    }
    expect(parser.parse(buildDataXml(baseEvent('LOGIN', { username }), hostileClient('x'))).data.UserName).toBe(username)
    expect(parser.parse(buildDataXml(baseEvent('LOGINERROR', { username }), hostileClient('x'))).data.errorData.username).toBe(username)
  })

  it('an already-escaped entity is escaped again, so it reads back as the characters sent', () => {
    const xml = buildDataXml(baseEvent('LOGIN', { username: '&amp;' }), hostileClient('x'))
    expect(xml).toContain('<UserName>&amp;amp;</UserName>')
    expect(parser.parse(xml).data.UserName).toBe('&amp;')
  })
})

describe('CR and CRLF', () => {
  for (const builder of BUILDERS) {
    it(`a CR survives a round trip through ${builder.name}: written as &#13;, read back as CR`, async () => {
      const value = 'a\rb\r\nc'
      const event = hostileEvent('LOGIN', value)
      const xml = builder.build(event, hostileClient(value))
      expect(xml).not.toContain('\r')
      expect(xml).toContain('a&#13;b&#13;\nc')
      // fast-xml-parser decodes numeric character references only with htmlEntities: true.
      expect(decodingParser.parse(xml)).toEqual({ [builder.root]: builder.expected(event, hostileClient(value), xmlSafe) })
      const field = builder.root === 'data' ? 'UserName' : 'username'
      expect(await pgText(xml, `/${builder.root}`, field)).toBe(value)
    })
  }
})

describe('illegal characters', () => {
  it('every C0 control character but tab, LF and CR becomes U+FFFD; those three are kept', () => {
    const xml = buildDataXml(baseEvent('LOGIN', { username: ALL_C0 }), hostileClient('x'))
    const expected = '\uFFFD'.repeat(9) + '\t\n' + '\uFFFD\uFFFD' + '&#13;' + '\uFFFD'.repeat(18)
    expect(parser.parse(xml).data.UserName).toBe(expected)
  })

  it('a lone surrogate becomes U+FFFD while an emoji pair is kept whole', () => {
    const xml = buildDataXml(baseEvent('LOGIN', { username: '\uD800😀\uDC00' }), hostileClient('x'))
    expect(parser.parse(xml).data.UserName).toBe('\uFFFD😀\uFFFD')
  })

  it('U+FFFE and U+FFFF become U+FFFD, U+FFFD itself is kept', () => {
    const xml = buildDataXml(baseEvent('LOGIN', { username: '\uFFFE\uFFFF\uFFFD' }), hostileClient('x'))
    expect(parser.parse(xml).data.UserName).toBe('\uFFFD\uFFFD\uFFFD')
  })
})

describe('the LOGINERROR password element', () => {
  it.each(HOSTILE)('stays empty when $label is in every field', ({ value }) => {
    const xml = buildDataXml(hostileEvent('LOGINERROR', value), hostileClient(value))
    expect(xml).toContain('<password></password>')
    expect(parser.parse(xml).data.errorData.password).toBe('')
  })

  it('stays empty for an ordinary failed login', () => {
    const data = parser.parse(buildDataXml(baseEvent('LOGINERROR'), hostileClient('x'))).data
    expect(data.errorData).toEqual({ password: '', Message: 'Incorrect password.', domain: '', name: 'FORM', username: 'alice' })
  })
})

describe('truncate', () => {
  const LONE_SURROGATE = /[\uD800-\uDFFF]/u // in a /u class, only unpaired surrogates match

  it('never splits a surrogate pair, at any limit', () => {
    const text = 'a😀b😀😀c👩‍💻d𝔘'
    for (let max = 1; max <= text.length + 1; max++) {
      const cut = truncate(text, max)
      expect(text.startsWith(cut)).toBe(true)
      expect(cut.length).toBeLessThanOrEqual(max)
      expect(cut.length).toBeGreaterThanOrEqual(Math.min(max, text.length) - 1)
      expect(cut).not.toMatch(LONE_SURROGATE)
    }
  })

  it('returns text within the limit unchanged', () => {
    expect(truncate('short', 5)).toBe('short')
    expect(truncate('', 10)).toBe('')
  })

  it('cuts a 100 KB string to exactly the limit', () => {
    const big = 'x'.repeat(HUNDRED_KB)
    expect(truncate(big, 1024)).toBe('x'.repeat(1024))
    expect(truncate(BIG, 4096).length).toBeLessThanOrEqual(4096)
    expect(BIG.startsWith(truncate(BIG, 4096))).toBe(true)
  })

  it('cuts a 100 KB string of emoji one unit short when the limit falls inside a pair', () => {
    const emoji = '😀'.repeat(HUNDRED_KB / 2)
    expect(truncate(emoji, 1000)).toBe('😀'.repeat(500))
    expect(truncate(emoji, 1001)).toBe('😀'.repeat(500))
    expect(truncate(emoji, 1001)).not.toMatch(LONE_SURROGATE)
  })

  it('a 100 KB User-Agent header is cut to userAgentMaxLength on capture', () => {
    const ua = userAgentOf({ headers: { 'user-agent': BIG } }, { userAgentMaxLength: 512, fieldMaxLength: 256 })
    expect(ua.length).toBeLessThanOrEqual(512)
    expect(ua.length).toBeGreaterThanOrEqual(511)
    expect(BIG.startsWith(ua)).toBe(true)
    expect(ua).not.toMatch(LONE_SURROGATE)
  })
})

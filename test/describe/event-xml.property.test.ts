import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { XMLParser, XMLValidator } from 'fast-xml-parser'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import { captureEvent } from '../../src/capture/request-facts.js'
import type { ClientInfo } from '../../src/describe/client-info.js'
import { buildDataXml, buildSessionContextXml, createDescriber } from '../../src/describe/event-xml.js'
import { AUDIT_EVENT_TYPES } from '../../src/types.js'
import type { AuditEvent } from '../../src/types.js'
import { DATABASES, POSTGRES_URL } from '../helpers/databases.js'
import { hostileString, NUM_RUNS, texts } from '../helpers/hostile-strings.js'
import { elementsOf, expectedData, expectedSessionContext, PROFILE_FIELDS, startTags, viaFxp } from '../helpers/xml-oracle.js'

const hostileEvent = fc.record({
  type: fc.constantFrom(...AUDIT_EVENT_TYPES),
  id: hostileString, sessionId: hostileString, username: hostileString, userId: hostileString, ip: hostileString, host: hostileString,
  userAgent: hostileString, method: hostileString, message: hostileString,
  urlParams: fc.array(fc.tuple(hostileString, hostileString), { maxLength: 3 }),
  profile: fc.record(Object.fromEntries(PROFILE_FIELDS.map((field) => [field, hostileString])) as Record<(typeof PROFILE_FIELDS)[number], typeof hostileString>, { requiredKeys: [] }),
  priorFailures: fc.option(fc.nat({ max: 99 }), { nil: undefined }),
}).map((fields): AuditEvent => ({ ...fields, time: Date.UTC(2026, 11, 1, 12), ...(fields.type === 'LOCKOUT' ? { lockout: { scope: 'user', attempts: 5, windowSeconds: 900, until: Date.UTC(2026, 11, 1, 13), enforced: true } } : {}) }))
const hostileClient = fc.record({ browser: hostileString, browserVersion: hostileString, os: hostileString, osVersion: hostileString }) as fc.Arbitrary<ClientInfo>

// One <urlparam> is still a list, as the oracle writes it.
const parser = new XMLParser({ parseTagValue: false, processEntities: true, htmlEntities: false, trimValues: false, isArray: (name) => name === 'urlparam' })
/** Decodes character references too, so text comes back exactly as stored (&#13; as CR). */
const decoding = new XMLParser({ parseTagValue: false, processEntities: true, htmlEntities: true, trimValues: false })

/** Every document of the property runs, checked by PostgreSQL's xml type after the runs, in few queries. */
const documents: string[] = []

describe(`property: any string in any field (${NUM_RUNS} cases per property)`, () => {
  it('gives documents that a strict parser accepts, with exactly the expected elements and values', () => {
    fc.assert(
      fc.property(hostileEvent, hostileClient, (event, client) => {
        for (const [root, build, expected] of [['data', buildDataXml, expectedData], ['sessioncontext', buildSessionContextXml, expectedSessionContext]] as const) {
          const xml = build(event, client)
          documents.push(xml)
          if (XMLValidator.validate(xml) !== true) return false
          const tree = expected(event, client, viaFxp)
          // A field's content never becomes an element of its own: the same start tags, the same texts.
          expect(startTags(xml).sort()).toEqual(elementsOf(root, tree).sort())
          expect(parser.parse(xml)).toEqual({ [root]: tree })
        }
        return true
      }),
      { numRuns: NUM_RUNS },
    )
  })

  it('never stores the password: no value equals it, and none of 4 or more characters contains it', () => {
    const describeEvent = createDescriber()
    // Fields that hold the password, inside other text, in capitals (the User-Agent is lowercased), or not at all.
    const around = (password: string) => fc.oneof(hostileString, fc.constant(password), fc.tuple(hostileString, hostileString).map(([a, b]) => `${a}${password}${b}`), fc.constant(password.toUpperCase()), fc.tuple(hostileString).map(([a]) => `${a}${password.toUpperCase()}`))
    const attempt = hostileString.filter((p) => p !== '').chain((password) =>
      fc.record({
        password: fc.constant(password),
        type: fc.constantFrom('LOGIN' as const, 'LOGINERROR' as const),
        username: around(password), userAgent: around(password), forwardedFor: around(password), host: around(password), message: around(password),
        paramName: around(password), paramValue: around(password),
      }),
    )
    fc.assert(
      fc.property(attempt, (a) => {
        const req = { ip: a.forwardedFor, headers: { 'user-agent': a.userAgent, host: a.host, 'x-forwarded-for': a.forwardedFor }, query: { [a.paramName]: a.paramValue, next: a.paramValue } }
        const event = captureEvent(a.type, req, 'SID', { username: a.username, userId: '', profile: {} }, { userAgentMaxLength: 512, fieldMaxLength: 1024 }, { method: 'FORM', message: a.message, password: a.password })
        const described = describeEvent(event)
        // What is spooled (the event) and what is stored (both documents, decoded as a reader would).
        const values = [...texts(event), ...texts(decoding.parse(described.data)), ...texts(decoding.parse(described.sessionContext))]
        return values.every((value) => value !== a.password && (a.password.length < 4 || !value.includes(a.password)))
      }),
      { numRuns: NUM_RUNS },
    )
  })

  describe('and PostgreSQL\'s xml type accepts every document', () => {
    const servers: Array<{ name: string; query: (text: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>; close: () => Promise<void> }> = []
    beforeAll(async () => {
      const lite = await PGlite.create()
      servers.push({ name: 'PGlite', query: async (text, params) => (await lite.query<Record<string, unknown>>(text, params)).rows, close: () => lite.close() })
      if (DATABASES.find((d) => d.name === 'postgres')!.unavailable === undefined) {
        const client = new pg.Client({ connectionString: POSTGRES_URL })
        await client.connect()
        servers.push({ name: 'PostgreSQL', query: async (text, params) => (await client.query(text, params)).rows, close: () => client.end() })
      }
    })
    afterAll(async () => {
      for (const server of servers) await server.close()
    })

    it('from the runs above, checked in batches of 2000 documents', async () => {
      expect(documents.length).toBeGreaterThanOrEqual(NUM_RUNS * 2)
      for (const server of servers) {
        for (let i = 0; i < documents.length; i += 2000) {
          const batch = documents.slice(i, i + 2000)
          const bad = await server.query('SELECT i FROM unnest($1::text[]) WITH ORDINALITY AS t(d, i) WHERE NOT xml_is_well_formed_document(d)', [batch])
          expect(bad.map((row) => batch[Number(row.i) - 1]), server.name).toEqual([])
          // The cast itself, as the procedure's xml parameters do it.
          const [parsed] = await server.query('SELECT count(xmlparse(document d)) AS n FROM unnest($1::text[]) AS d', [batch])
          expect(Number(parsed!.n), server.name).toBe(batch.length)
        }
      }
    })
  })
})

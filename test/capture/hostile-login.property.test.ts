import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import express from 'express'
import fc from 'fast-check'
import { XMLParser } from 'fast-xml-parser'
import { createDemo } from '../../demo/app.js'
import type { Demo } from '../../demo/app.js'
import { scrub } from '../../src/capture/request-facts.js'
import { toXmlChars, truncate } from '../../src/describe/xml-text.js'
import { listen } from '../helpers/browser-like-client.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'
import { hostileString, NUM_RUNS, texts } from '../helpers/hostile-strings.js'

const postgres = DATABASES.find((d) => d.name === 'postgres')!
const decoding = new XMLParser({ parseTagValue: false, processEntities: true, htmlEntities: true, trimValues: false, isArray: (name) => name === 'urlparam' })
/** Header values fetch can send: visible Latin-1 and spaces (no CR, LF or NUL, which HTTP itself forbids). */
const headerValue = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 40 })

describe.skipIf(postgres.unavailable !== undefined)(`property: a failed login with any username is recorded (${NUM_RUNS} HTTP attempts against the demo on PostgreSQL)`, () => {
  let ns: TestNamespace
  let project: TempProject
  let demo: Demo
  let server: Awaited<ReturnType<typeof listen>>
  beforeAll(async () => {
    ns = await postgres.create()
    // No lockout: every attempt must reach the strategy.
    project = tempProject({ ...ns.properties, 'security.logging.bruteforce.user.attempts': '0', 'security.logging.bruteforce.ip.attempts': '0' })
    demo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 600, trustProxy: true, logger: memoryLogger() })
    server = await listen(demo.app)
  })
  afterAll(async () => {
    await server?.close()
    await demo?.audit.close()
    project?.remove()
    await ns?.teardown()
  })

  it('stores one LOGINERROR per attempt, with the username as sent (made XML-safe), and never the password', async () => {
    const attempts = fc.sample(fc.record({ username: hostileString, password: hostileString, userAgent: headerValue, forwardedFor: headerValue, host: headerValue }), { numRuns: NUM_RUNS, seed: 7 })
    let next = 0
    const send = async (): Promise<void> => {
      for (let n = next++; n < attempts.length; n = next++) {
        const a = attempts[n]!
        const response = await fetch(`${server.url}/login?attempt=n${n}n`, {
          method: 'POST',
          redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': a.userAgent, 'x-forwarded-for': a.forwardedFor, 'x-forwarded-host': a.host },
          body: new URLSearchParams({ username: a.username, password: a.password }),
        })
        await response.arrayBuffer()
        expect([302, 400]).toContain(response.status)
      }
    }
    await Promise.all(Array.from({ length: 12 }, send))
    await demo.audit.flush()
    const rows = await ns.client.query<{ data: string; session_context: string }>(`SELECT data::text AS data, session_context::text AS session_context FROM ${ns.table} WHERE type = 'LOGINERROR'`)
    expect(rows).toHaveLength(attempts.length)
    const seen = new Map<number, { data: string; context: string }>()
    for (const row of rows) {
      const params = decoding.parse(row.session_context).sessioncontext.urlparams?.urlparam ?? []
      const tag = params.find((p: { name: string }) => p.name === 'attempt')?.value as string | undefined
      const n = Number(/^n(\d+)n$/.exec(tag ?? '')?.[1] ?? NaN)
      seen.set(n, { data: row.data, context: row.session_context })
    }
    for (const [n, a] of attempts.entries()) {
      const row = seen.get(n)
      expect(row, `attempt ${n}: ${JSON.stringify(a)}`).toBeDefined()
      // What the server received (a form cannot carry a lone surrogate), made XML-safe, the password scrubbed, cut.
      const form = new URLSearchParams({ username: a.username, password: a.password })
      const password = form.get('password')!
      const expected = truncate(scrub(toXmlChars(form.get('username')!), password), 1024)
      expect(String(decoding.parse(row!.data).data.errorData.username), `attempt ${n}`).toBe(expected)
      const stored = [...texts(decoding.parse(row!.data)), ...texts(decoding.parse(row!.context))]
      // An empty password is no secret (and equals every empty element).
      if (password !== '') expect(stored.filter((value) => value === password || (password.length >= 4 && value.includes(password))), `attempt ${n}`).toEqual([])
    }
  }, 600_000)
})

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { XMLParser } from 'fast-xml-parser'
import { createSessionIdHasher } from '../../src/capture/session-id.js'
import { SESSION_KEY_FILE } from '../../src/config/session-key.js'
import { client } from '../helpers/browser-like-client.js'
import { eventually } from '../helpers/eventually.js'
import { startRunningDemo } from '../helpers/running-demo.js'
import type { RunningDemo } from '../helpers/running-demo.js'

const parser = new XMLParser({ parseTagValue: false })

for (const mode of ['hmac', 'raw'] as const) {
  describe(`session ids stored as ${mode}`, () => {
    let running: RunningDemo
    /** What the audit trail should store for a cookie's session id. */
    let stored: (sessionId: string) => string

    beforeAll(async () => {
      running = await startRunningDemo({ 'security.logging.sessionid': mode }, { sessionTimeoutSeconds: 1, sweepIntervalMs: 100 })
      // hmac mode with no $AUTHTRAIL_SESSION_KEY: the key was created in the embedded store's directory.
      stored = mode === 'raw' ? (id) => id : createSessionIdHasher('hmac', Buffer.from(readFileSync(path.join(running.project.dir, 'data', SESSION_KEY_FILE), 'utf8').trim(), 'utf8'))
    })
    afterAll(async () => {
      await running?.close()
    })

    const sessionRows = async (sessionId: string) => {
      await running.demo.audit.flush()
      return (await running.demo.audit.query({ limit: 1000 })).filter((row) => row.session_id === stored(sessionId))
    }

    it('LOGIN and LOGOUT of one session carry the same stored session id, in the column and in both documents', async () => {
      const browser = client(running.url)
      await browser.post('/login', { username: 'alice', password: 'wonderland' })
      const sessionId = browser.sessionId()!
      await browser.post('/logout')
      const rows = await sessionRows(sessionId)
      expect(rows.map((row) => row.type).sort()).toEqual(['LOGIN', 'LOGOUT'])
      for (const row of rows) {
        expect(parser.parse(row.data).data.HttpSessionId).toBe(stored(sessionId))
        expect(parser.parse(row.session_context).sessioncontext.sessionid).toBe(stored(sessionId))
      }
      if (mode === 'hmac') {
        expect(stored(sessionId)).toMatch(/^[0-9A-F]{32}$/)
        expect(JSON.stringify(await running.demo.audit.query({ limit: 1000 }))).not.toContain(sessionId)
      } else {
        expect(rows[0]!.session_id).toBe(sessionId)
      }
    })

    it('LOGIN and SESSIONTIMEOUT of one session carry the same stored session id', async () => {
      const browser = client(running.url)
      await browser.post('/login', { username: 'admin', password: 'change-me' })
      const sessionId = browser.sessionId()!
      await eventually(async () => expect((await sessionRows(sessionId)).map((row) => row.type).sort()).toEqual(['LOGIN', 'SESSIONTIMEOUT']))
      for (const row of await sessionRows(sessionId)) {
        expect(parser.parse(row.data).data.HttpSessionId).toBe(stored(sessionId))
        expect(row.username).toBe('admin')
      }
    })
  })
}

import { readFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import express from 'express'
import { XMLParser } from 'fast-xml-parser'
import { createDemo } from '../../demo/app.js'
import type { Demo } from '../../demo/app.js'
import { createSessionIdHasher } from '../../src/capture/session-id.js'
import { SESSION_KEY_FILE } from '../../src/config/session-key.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { eventually } from '../helpers/eventually.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

const parser = new XMLParser({ parseTagValue: false })

for (const mode of ['hmac', 'raw'] as const) {
  describe(`session ids stored as ${mode}`, () => {
    let project: TempProject
    let demo: Demo
    let server: Awaited<ReturnType<typeof listen>>
    /** What the audit trail should store for a cookie's session id. */
    let stored: (sessionId: string) => string

    beforeAll(async () => {
      project = tempProject({ 'security.logging.sessionid': mode })
      demo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 1, sweepIntervalMs: 100, logger: memoryLogger() })
      server = await listen(demo.app)
      // hmac mode with no $AUTHTRAIL_SESSION_KEY: the key was created in the embedded store's directory.
      stored = mode === 'raw' ? (id) => id : createSessionIdHasher('hmac', Buffer.from(readFileSync(path.join(project.dir, 'data', SESSION_KEY_FILE), 'utf8').trim(), 'utf8'))
    })
    afterAll(async () => {
      await server?.close()
      await demo?.audit.close()
      project?.remove()
    })

    const sessionRows = async (sessionId: string) => {
      await demo.audit.flush()
      return (await demo.audit.query({ limit: 1000 })).filter((row) => row.session_id === stored(sessionId))
    }

    it('LOGIN and LOGOUT of one session carry the same stored session id, in the column and in both documents', async () => {
      const browser = client(server.url)
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
        expect(JSON.stringify(await demo.audit.query({ limit: 1000 }))).not.toContain(sessionId)
      } else {
        expect(rows[0]!.session_id).toBe(sessionId)
      }
    })

    it('LOGIN and SESSIONTIMEOUT of one session carry the same stored session id', async () => {
      const browser = client(server.url)
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

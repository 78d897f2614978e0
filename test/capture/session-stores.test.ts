import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import express from 'express'
import { createDemo } from '../../demo/app.js'
import type { Demo } from '../../demo/app.js'
import type { OpenedSessionStore } from '../../demo/session-store.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { eventually, sleep } from '../helpers/eventually.js'
import { SESSION_STORES } from '../helpers/session-stores.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

const postgres = DATABASES.find((d) => d.name === 'postgres')!
const mariadb = DATABASES.find((d) => d.name === 'mariadb')!

// The ledger lives in the audit database; each store is tried against PostgreSQL's, and MemoryStore also
// against MariaDB's (the other dialect of the ledger's SQL).
const CASES = [
  ...SESSION_STORES.map((store) => ({ store, database: postgres })),
  { store: SESSION_STORES[0]!, database: mariadb },
]

for (const { store, database } of CASES) {
  describe.skipIf(store.unavailable !== undefined || database.unavailable !== undefined)(`session ends with ${store.kind} sessions, ledger in ${database.name}`, () => {
    let namespace: TestNamespace
    let project: TempProject
    let sessions: OpenedSessionStore
    let demo: Demo
    let server: Awaited<ReturnType<typeof listen>>
    let lazy: { demo: Demo; server: Awaited<ReturnType<typeof listen>> }

    beforeAll(async () => {
      namespace = await database.create()
      project = tempProject(namespace.properties)
      sessions = await store.open(namespace.id)
      demo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 1, sweepIntervalMs: 200, logger: memoryLogger(), store: sessions.store })
      server = await listen(demo.app)
      // A second instance on the same store and ledger whose sweep would come only after a minute.
      const lazyDemo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 1, sweepIntervalMs: 60_000, logger: memoryLogger(), store: sessions.store, sessionSecret: 'shared' })
      lazy = { demo: lazyDemo, server: await listen(lazyDemo.app) }
    }, 60_000)
    afterAll(async () => {
      await server?.close()
      await lazy?.server.close()
      await demo?.audit.close()
      await lazy?.demo.audit.close()
      await sessions?.close()
      await namespace?.teardown()
      project?.remove()
    })

    const rows = async (types: string[], audit = demo.audit) => {
      await demo.audit.flush()
      await lazy.demo.audit.flush()
      return (await audit.query({ types: types as never, limit: 1000 })).reverse()
    }
    const loginAs = async (base: string, username: string, password: string) => {
      const browser = client(base)
      expect((await browser.post('/login', { username, password })).location).toBe('/')
      const login = (await rows(['LOGIN'])).at(-1)!
      expect(login.username).toBe(username)
      return { browser, sessionId: login.session_id }
    }

    it('records exactly one SESSIONTIMEOUT, with the user and the session of the LOGIN, when it expires', async () => {
      const { sessionId } = await loginAs(server.url, 'alice', 'wonderland')
      const [timeout] = await eventually(async () => {
        const found = (await rows(['SESSIONTIMEOUT'])).filter((r) => r.session_id === sessionId)
        expect(found).toHaveLength(1)
        return found
      })
      expect(timeout!.username).toBe('alice')
      await sleep(1000) // further sweeps report nothing more
      expect((await rows(['SESSIONTIMEOUT', 'SESSIONEND'])).filter((r) => r.session_id === sessionId)).toHaveLength(1)
    })

    it('records LOGOUT and never a SESSIONTIMEOUT for a session that logged out', async () => {
      const { browser, sessionId } = await loginAs(server.url, 'alice', 'wonderland')
      await browser.post('/logout')
      await sleep(2000) // past the expiry the session would have had, and several sweeps
      const ends = (await rows(['LOGOUT', 'SESSIONTIMEOUT', 'SESSIONEND'])).filter((r) => r.session_id === sessionId)
      expect(ends.map((r) => [r.type, r.username])).toEqual([['LOGOUT', 'alice']])
    })

    it('records a new login over a session as SESSIONEND with its reason, not as a timeout', async () => {
      const { browser, sessionId } = await loginAs(server.url, 'alice', 'wonderland')
      expect((await browser.post('/login', { username: 'admin', password: 'change-me' })).location).toBe('/')
      await sleep(2000)
      const ends = (await rows(['LOGOUT', 'SESSIONTIMEOUT', 'SESSIONEND'])).filter((r) => r.session_id === sessionId)
      expect(ends).toHaveLength(1)
      expect(ends[0]).toMatchObject({ type: 'SESSIONEND', username: 'alice' })
      expect(ends[0]!.data).toContain('<Reason>a new login replaced the session</Reason>')
    })

    it('notices at once a request that arrives with an expired session cookie', async () => {
      // The lazy instance would sweep only after a minute: the request itself must trigger the report.
      const { browser, sessionId } = await loginAs(lazy.server.url, 'alice', 'wonderland')
      await demo.audit.close() // the eager instance must not be the one that reports it
      await sleep(2500) // connect-pg-simple keeps whole seconds
      const response = await browser.get('/')
      expect(response.text).toContain('Log in') // the store no longer had the session
      const [timeout] = await eventually(async () => {
        const found = (await rows(['SESSIONTIMEOUT'], lazy.demo.audit)).filter((r) => r.session_id === sessionId)
        expect(found).toHaveLength(1)
        return found
      }, 5000)
      expect(timeout!.username).toBe('alice')
    })
  })
}

describe.skipIf(postgres.unavailable !== undefined)('an absolute session lifetime', () => {
  let namespace: TestNamespace
  let project: TempProject
  let demo: Demo
  let server: Awaited<ReturnType<typeof listen>>

  beforeAll(async () => {
    namespace = await postgres.create()
    project = tempProject({ ...namespace.properties, 'security.logging.session.absolute.seconds': '2' })
    demo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 60, sweepIntervalMs: 200, logger: memoryLogger() })
    server = await listen(demo.app)
  }, 60_000)
  afterAll(async () => {
    await server?.close()
    await demo?.audit.close()
    await namespace?.teardown()
    project?.remove()
  })

  it('ends an active session when reached: SESSIONEND with the reason, the session destroyed, no SESSIONTIMEOUT', async () => {
    const browser = client(server.url)
    await browser.post('/login', { username: 'alice', password: 'wonderland' })
    await demo.audit.flush()
    const [login] = await demo.audit.query({ types: ['LOGIN'] })
    // Busy all along: idle expiry (60 s) never comes near.
    let signedIn = true
    for (let i = 0; i < 20 && signedIn; i++) {
      await sleep(250)
      signedIn = (await browser.get('/')).text.includes('Signed in as')
    }
    expect(signedIn).toBe(false)
    await demo.audit.flush()
    const ends = (await demo.audit.query({ types: ['LOGOUT', 'SESSIONTIMEOUT', 'SESSIONEND'] })).filter((r) => r.session_id === login!.session_id)
    expect(ends).toHaveLength(1)
    expect(ends[0]).toMatchObject({ type: 'SESSIONEND', username: 'alice' })
    expect(ends[0]!.data).toContain('<Reason>absolute session lifetime of 2 s reached</Reason>')
    expect(new Date(ends[0]!.time).getTime() - new Date(login!.time).getTime()).toBeGreaterThanOrEqual(2000)
  })
})

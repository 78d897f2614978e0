import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { startDemoProcess } from '../helpers/demo-process.js'
import { eventually, sleep } from '../helpers/eventually.js'
import { SESSION_STORES } from '../helpers/session-stores.js'
import { tempProject } from '../helpers/temp-project.js'

const INSTANCES = 3
const SESSIONS = 200
const TIMEOUT_SECONDS = 4

const postgres = DATABASES.find((d) => d.name === 'postgres')!

for (const store of SESSION_STORES.filter((s) => s.kind !== 'memory')) {
  for (const kill of [false, true]) {
    describe.skipIf(postgres.unavailable !== undefined || store.unavailable !== undefined)(`${INSTANCES} app processes sharing ${store.kind} sessions and a PostgreSQL ledger`, () => {
      let ns: TestNamespace
      beforeEach(async () => {
        ns = await postgres.create()
        // Created once here: three processes racing connect-pg-simple's CREATE TABLE IF NOT EXISTS collide.
        const sessions = await store.open(ns.id)
        await new Promise((resolve) => sessions.store.get('warm-up', resolve))
        await sessions.close()
      })
      afterEach(async () => {
        await ns?.teardown()
      })

      const count = async (type: string) => {
        const [row] = await ns.client.query<{ total: string | number; sessions: string | number }>(
          `SELECT count(*) AS total, count(DISTINCT session_id) AS sessions FROM ${ns.table} WHERE type = $1`,
          [type],
        )
        return { total: Number(row!.total), sessions: Number(row!.sessions) }
      }

      it(`report exactly ${SESSIONS} timeouts for ${SESSIONS} sessions expiring at once${kill ? ', though one process is killed during the sweep' : ''}`, async () => {
        const project = tempProject(ns.properties)
        const env = {
          AUTHTRAIL_CONFIG: project.config,
          SESSION_STORE: store.kind,
          SESSION_STORE_URL: store.url,
          SESSION_STORE_NAMESPACE: ns.id,
          SESSION_SECRET: 'shared-by-the-instances',
          SESSION_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
        }
        const servers = await Promise.all(Array.from({ length: INSTANCES }, () => startDemoProcess(project.dir, env)))
        try {
          // Logins spread over the instances, 20 at a time.
          let next = 0
          await Promise.all(
            Array.from({ length: 20 }, async () => {
              while (next < SESSIONS) {
                const n = next++
                const response = await client(servers[n % INSTANCES]!.url).post('/login', { username: 'alice', password: 'wonderland' })
                expect(response.location).toBe('/')
              }
            }),
          )
          const logins = await eventually(async () => {
            const found = await count('LOGIN')
            expect(found.total).toBe(SESSIONS)
            return found
          })
          expect(logins.sessions).toBe(SESSIONS)

          if (kill) {
            // Killed as soon as the first timeouts are stored: mid-sweep, with claims and spooled events of its own.
            await eventually(async () => expect((await count('SESSIONTIMEOUT')).total).toBeGreaterThan(0), 30_000, 20)
            await servers[0]!.stop('SIGKILL')
          }
          await eventually(async () => expect((await count('SESSIONTIMEOUT')).total).toBe(SESSIONS), 60_000, 250)
          // The killed process's claims hold until their lease (10 s here) runs out; a live instance then
          // takes them over and reports them again under the same event ids, which the procedure ignores.
          await eventually(async () => {
            const [left] = await ns.client.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${ns.id}.securitylog_session`)
            expect(Number(left!.n)).toBe(0)
          }, 30_000, 250)
          await sleep(3000) // several more sweeps by every instance: nothing more is reported
          expect(await count('SESSIONTIMEOUT')).toEqual({ total: SESSIONS, sessions: SESSIONS })
          const [unmatched] = await ns.client.query<{ n: string | number }>(
            `SELECT count(*) AS n FROM ${ns.table} t WHERE t.type = 'SESSIONTIMEOUT' AND t.username = 'alice' AND NOT EXISTS (SELECT 1 FROM ${ns.table} l WHERE l.type = 'LOGIN' AND l.session_id = t.session_id)`,
          )
          expect(Number(unmatched!.n)).toBe(0)
          const [left] = await ns.client.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${ns.id}.securitylog_session`)
          expect(Number(left!.n)).toBe(0)
        } finally {
          const outputs = servers.map((s) => s.output()).join('\n')
          const codes = await Promise.all(servers.map((server) => server.stop()))
          expect(codes.slice(kill ? 1 : 0), outputs).toEqual(codes.slice(kill ? 1 : 0).map(() => 0))
          project.remove()
        }
      }, 180_000)
    })
  }
}

describe.skipIf(postgres.unavailable !== undefined)('a restart forgets no session', () => {
  let ns: TestNamespace
  beforeEach(async () => {
    ns = await postgres.create()
    const sessions = await SESSION_STORES.find((s) => s.kind === 'postgres')!.open(ns.id)
    await new Promise((resolve) => sessions.store.get('warm-up', resolve))
    await sessions.close()
  })
  afterEach(async () => {
    await ns?.teardown()
  })

  /**
   * A login on one process, `between` ending that process, then a second start: which must report the
   * session's timeout, with the user and session of its LOGIN.
   */
  const reportedAfterRestart = async (secret: string, between: (first: Awaited<ReturnType<typeof startDemoProcess>>) => Promise<void>): Promise<void> => {
    const project = tempProject(ns.properties)
    const env = { AUTHTRAIL_CONFIG: project.config, SESSION_STORE: 'postgres', SESSION_STORE_NAMESPACE: ns.id, SESSION_SECRET: secret, SESSION_TIMEOUT_SECONDS: '2' }
    try {
      const first = await startDemoProcess(project.dir, env)
      expect((await client(first.url).post('/login', { username: 'alice', password: 'wonderland' })).location).toBe('/')
      await between(first)
      const second = await startDemoProcess(project.dir, env)
      try {
        const [timeout] = await eventually(async () => {
          const rows = await ns.client.query<{ username: string; session_id: string }>(`SELECT username, session_id FROM ${ns.table} WHERE type = 'SESSIONTIMEOUT'`)
          expect(rows).toHaveLength(1)
          return rows
        }, 20_000)
        const [login] = await eventually(async () => {
          const rows = await ns.client.query<{ session_id: string }>(`SELECT session_id FROM ${ns.table} WHERE type = 'LOGIN'`)
          expect(rows).toHaveLength(1)
          return rows
        })
        expect(timeout).toEqual({ username: 'alice', session_id: login!.session_id })
      } finally {
        await second.stop()
      }
    } finally {
      project.remove()
    }
  }

  it('reports the timeout of a session that expired while no instance was running, after the next start', async () => {
    await reportedAfterRestart('restart', async (first) => {
      expect(await first.stop()).toBe(0)
      await sleep(3000) // expired with nobody watching
      const [before] = await ns.client.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${ns.table} WHERE type = 'SESSIONTIMEOUT'`)
      expect(Number(before!.n)).toBe(0)
    })
  }, 60_000)

  it('reports the timeout of a session whose process was killed just after its login, before its row was written', async () => {
    await reportedAfterRestart('killed', async (first) => {
      // At once: the ledger writes its rows a batch at a time, well after the login was answered.
      await first.stop('SIGKILL')
      const ledger = ns.table.replace(/securitylog$/, 'securitylog_session')
      const [row] = await ns.client.query<{ n: string | number }>(`SELECT count(*) AS n FROM ${ledger}`)
      expect(Number(row!.n)).toBe(0)
    })
  }, 60_000)
})

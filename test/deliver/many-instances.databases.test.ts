import { describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { DATABASES, namespacePerTest } from '../helpers/databases.js'
import { startDemoProcess } from '../helpers/demo-process.js'
import { tempProject } from '../helpers/temp-project.js'

const INSTANCES = 3
const LOGINS_PER_INSTANCE = 60

for (const db of DATABASES.filter((d) => d.name !== 'pglite')) {
  describe.skipIf(db.unavailable !== undefined)(`${INSTANCES} app processes writing to one ${db.name} at once`, () => {
    const ns = namespacePerTest(db)

    it('lose and duplicate nothing: every event is stored exactly once', async () => {
      // Every failed login comes from 127.0.0.1: no address lockout, whose LOCKOUT would add a row.
      const project = tempProject({ ...ns.properties, 'security.logging.batch.size': '25', 'security.logging.batch.flush.ms': '5', 'security.logging.bruteforce.ip.attempts': '0' })
      const servers = await Promise.all(Array.from({ length: INSTANCES }, () => startDemoProcess(project.dir)))
      try {
        // Every instance at once: a failed and a successful login per iteration, with a logout.
        await Promise.all(
          servers.map(async (server, n) => {
            for (let i = 0; i < LOGINS_PER_INSTANCE; i++) {
              await client(server.url).post('/login', { username: `nobody-${n}-${i}`, password: 'x' })
              const browser = client(server.url)
              await browser.post('/login', { username: 'alice', password: 'wonderland' })
              await browser.post('/logout')
            }
          }),
        )
      } finally {
        // A graceful stop flushes what each instance has queued.
        const codes = await Promise.all(servers.map((server) => server.stop()))
        expect(codes, servers.map((s) => s.output()).join('\n')).toEqual(codes.map(() => 0))
        project.remove()
      }
      const expected = INSTANCES * LOGINS_PER_INSTANCE * 3
      const [counts] = await ns.client.query<{ total: string | number; events: string | number; ids: string | number }>(
        `SELECT count(*) AS total, count(DISTINCT event_id) AS events, count(DISTINCT id) AS ids FROM ${ns.table}`,
      )
      expect(Number(counts!.total)).toBe(expected)
      expect(Number(counts!.events)).toBe(expected)
      expect(Number(counts!.ids)).toBe(expected)
      const byType = await ns.client.query<{ type: string; n: string | number }>(`SELECT type, count(*) AS n FROM ${ns.table} GROUP BY type ORDER BY type`)
      expect(byType.map((r) => `${r.type} ${Number(r.n)}`)).toEqual([
        `LOGIN ${expected / 3}`,
        `LOGINERROR ${expected / 3}`,
        `LOGOUT ${expected / 3}`,
      ])
    })
  })
}

import { readdirSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { DATABASES, namespacePerTest } from '../helpers/databases.js'
import { startDemoProcess } from '../helpers/demo-process.js'
import { eventually } from '../helpers/eventually.js'
import { tempProject } from '../helpers/temp-project.js'

const postgres = DATABASES.find((db) => db.name === 'postgres')!
const LOGINS = 25

describe.skipIf(postgres.unavailable !== undefined)('an app process killed with SIGKILL', () => {
  const ns = namespacePerTest(postgres)

  it('loses no event it acknowledged: the next process replays its spool, without duplicates', async () => {
    const count = async () => Number((await ns.client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ns.table}`))[0]!.n)
    // Events stay in memory: no batch fills and the flush delay never ends before the kill.
    // Every failed login comes from 127.0.0.1: no address lockout, whose LOCKOUT would add a row.
    const project = tempProject({ ...ns.properties, 'security.logging.batch.size': '10000', 'security.logging.batch.flush.ms': '60000', 'security.logging.bruteforce.ip.attempts': '0' })
    try {
      const first = await startDemoProcess(project.dir)
      let acknowledged = 0
      for (let i = 0; i < LOGINS; i++) {
        if ((await client(first.url).post('/login', { username: `mallory${i}`, password: 'x' })).status === 302) acknowledged++
        if ((await client(first.url).post('/login', { username: 'alice', password: 'wonderland' })).status === 302) acknowledged++
      }
      expect(acknowledged).toBe(2 * LOGINS)
      expect(await count()).toBe(0)
      expect(await first.stop('SIGKILL')).toBe(null)

      // The same directory, ordinary settings: the spool left behind is replayed.
      project.write('config/generalapp.properties', Object.entries({ ...ns.properties, 'security.logging.batch.flush.ms': '5' }).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n')
      const second = await startDemoProcess(project.dir)
      try {
        await eventually(async () => expect(await count()).toBe(acknowledged), 20_000)
        const [distinct] = await ns.client.query<{ n: string }>(`SELECT count(DISTINCT event_id) AS n FROM ${ns.table}`)
        expect(Number(distinct!.n)).toBe(acknowledged)
        expect(second.output()).toContain(`replaying ${acknowledged} events`)
      } finally {
        expect(await second.stop()).toBe(0)
      }
      // Everything stored and a clean shutdown: no spool is left to replay.
      expect(readdirSync(path.join(project.dir, 'spool'))).toEqual([])
    } finally {
      project.remove()
    }
  })
})

import { describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { DATABASES, namespacePerTest } from '../helpers/databases.js'
import { startDemoProcess } from '../helpers/demo-process.js'
import { eventually, sleep } from '../helpers/eventually.js'
import { tempProject } from '../helpers/temp-project.js'

for (const db of DATABASES.filter((d) => d.name !== 'pglite')) {
  describe.skipIf(db.unavailable !== undefined)(`a lockout shared by two app processes through ${db.name}`, () => {
    const ns = namespacePerTest(db)

    it('is triggered by failures spread over both instances, recorded once, and refused by both', async () => {
      const project = tempProject({
        ...ns.properties,
        'security.logging.bruteforce.user.attempts': '5',
        'security.logging.bruteforce.block': 'true',
        'security.logging.bruteforce.sync.ms': '100',
        'security.logging.batch.flush.ms': '5',
      })
      const [a, b] = await Promise.all([startDemoProcess(project.dir), startDemoProcess(project.dir)])
      const lockouts = async () => ns.client.query<{ username: string }>(`SELECT username FROM ${ns.table} WHERE type = 'LOCKOUT'`)
      try {
        // Four failures, two on each: below the threshold on either instance, and in total.
        for (const server of [a!, b!, a!, b!]) expect((await client(server.url).post('/login', { username: 'victim', password: 'guess' })).status).toBe(302)
        await sleep(400)
        expect(await lockouts()).toEqual([])
        // The fifth, on A, reaches five only with B's two, which A learnt of through the database.
        expect((await client(a!.url).post('/login', { username: 'victim', password: 'guess' })).status).toBe(302)
        await eventually(async () => expect(await lockouts()).toEqual([{ username: 'victim' }]))
        for (const server of [a!, b!]) {
          await eventually(async () => {
            const refused = await client(server.url).post('/login', { username: 'victim', password: 'another guess' })
            expect([refused.status, refused.text]).toEqual([429, 'Too many failed login attempts. Try again in 15 minutes.'])
          }, 5_000)
        }
        // Someone else is not concerned.
        expect((await client(b!.url).post('/login', { username: 'alice', password: 'wonderland' })).location).toBe('/')
        await sleep(400)
        expect(await lockouts()).toHaveLength(1)
      } finally {
        const codes = await Promise.all([a!.stop(), b!.stop()])
        expect(codes, a!.output() + b!.output()).toEqual([0, 0])
        project.remove()
      }
    }, 60_000)
  })
}

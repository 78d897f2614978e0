import { describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { DATABASES, POSTGRES_URL, namespacePerTest } from '../helpers/databases.js'
import { startDemoProcess } from '../helpers/demo-process.js'
import { eventually, sleep } from '../helpers/eventually.js'
import { tcpProxy } from '../helpers/tcp-proxy.js'
import { tempProject } from '../helpers/temp-project.js'

const postgres = DATABASES.find((db) => db.name === 'postgres')!

describe.skipIf(postgres.unavailable !== undefined)('delivery faults against PostgreSQL', () => {
  const ns = namespacePerTest(postgres)
  const counts = async () => {
    const [row] = await ns.client.query<{ total: string; events: string }>(`SELECT count(*) AS total, count(DISTINCT event_id) AS events FROM ${ns.table}`)
    return { total: Number(row!.total), events: Number(row!.events) }
  }

  it('starts while the database is down, answers logins, and stores their events and sessions once it is up', async () => {
    const proxy = await tcpProxy(Number(new URL(POSTGRES_URL).port || 5432))
    await proxy.down()
    const url = POSTGRES_URL.replace(/:\d+\//, `:${proxy.port}/`)
    const project = tempProject({ ...ns.properties, 'security.logging.db': url, 'security.logging.bruteforce.ip.attempts': '0' })
    const app = await startDemoProcess(project.dir, { SESSION_TIMEOUT_SECONDS: '4' })
    try {
      expect(app.output()).toMatch(/does not answer; authtrail starts anyway/)
      const failed = await client(app.url).post('/login', { username: 'early-bird', password: 'x' })
      const ok = await client(app.url).post('/login', { username: 'alice', password: 'wonderland' })
      expect([failed.status, ok.location]).toEqual([302, '/'])
      await sleep(1500)
      expect((await counts()).total).toBe(0)
      await proxy.up()
      await eventually(async () => {
        const rows = await ns.client.query<{ type: string; username: string }>(`SELECT type, username FROM ${ns.table} WHERE type IN ('LOGIN', 'LOGINERROR') ORDER BY type`)
        expect(rows).toEqual([{ type: 'LOGIN', username: 'alice' }, { type: 'LOGINERROR', username: 'early-bird' }])
      }, 45_000, 250)
      // The session logged in while the database was down is in the ledger: its timeout is reported.
      await eventually(async () => {
        const rows = await ns.client.query<{ username: string }>(`SELECT username FROM ${ns.table} WHERE type = 'SESSIONTIMEOUT'`)
        expect(rows.map((r) => r.username)).toEqual(['alice'])
      }, 45_000, 250)
    } finally {
      expect(await app.stop()).toBe(0)
      await proxy.close()
      project.remove()
    }
  }, 120_000)

  it('keeps every login working through a 30 s database outage and stores every event once it is back', async () => {
    const proxy = await tcpProxy(Number(new URL(POSTGRES_URL).port || 5432))
    const url = POSTGRES_URL.replace(/:\d+\//, `:${proxy.port}/`)
    // Every failed login comes from 127.0.0.1: no address lockout, whose LOCKOUT would add a row.
    const project = tempProject({ ...ns.properties, 'security.logging.db': url, 'security.logging.batch.flush.ms': '5', 'security.logging.bruteforce.ip.attempts': '0' })
    const app = await startDemoProcess(project.dir)
    let sent = 0
    const logins = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const failed = await client(app.url).post('/login', { username: `outage${sent}`, password: 'x' })
        const ok = await client(app.url).post('/login', { username: 'alice', password: 'wonderland' })
        expect([failed.status, ok.status]).toEqual([302, 302])
        expect(ok.location).toBe('/')
        sent += 2
      }
    }
    try {
      await logins(10)
      await eventually(async () => expect((await counts()).total).toBe(sent))
      await proxy.down()
      const outageEnds = Date.now() + 30_000
      // Logins go on during the outage, a few every second.
      while (Date.now() < outageEnds) {
        await logins(2)
        await sleep(500)
      }
      const duringOutage = (await counts()).total
      expect(duringOutage).toBe(20)
      await proxy.up()
      await eventually(async () => expect(await counts()).toEqual({ total: sent, events: sent }), 45_000, 250)
      expect(app.output()).toMatch(/delivery to .* failed \(try \d+/)
    } finally {
      expect(await app.stop()).toBe(0)
      await proxy.close()
      project.remove()
    }
  }, 120_000)

  it('parks an event the procedure keeps refusing, while the others are stored', async () => {
    await ns.admin(`CREATE PROCEDURE picky_logging(session_context xml, data xml, type varchar) LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF (xpath('/data/errorData/username/text()', data))[1]::text = 'poison' THEN RAISE EXCEPTION 'picky_logging refuses this event'; END IF;
  CALL securitylogging(session_context, data, type);
END $$`)
    const project = tempProject({
      ...ns.properties,
      'security.logging.proc': `${ns.id}.picky_logging`,
      'security.logging.batch.flush.ms': '5',
      'security.logging.retry.initial.ms': '20',
      'security.logging.retry.attempts': '3',
    })
    const app = await startDemoProcess(project.dir)
    try {
      await client(app.url).post('/login', { username: 'before', password: 'x' })
      await client(app.url).post('/login', { username: 'poison', password: 'x' })
      await client(app.url).post('/login', { username: 'after', password: 'x' })
      await eventually(async () => expect((await counts()).total).toBe(2))
      await eventually(async () => expect(app.output()).toContain('parked after 3/3 attempts'), 10_000)
      expect(app.output()).toContain('picky_logging refuses this event')
      const rows = await ns.client.query<{ username: string }>(`SELECT username FROM ${ns.table} ORDER BY id`)
      expect(rows.map((r) => r.username)).toEqual(['before', 'after'])
    } finally {
      expect(await app.stop()).toBe(0)
      project.remove()
    }
  })

  it('answers logins without waiting for a slow procedure', async () => {
    await ns.admin(`CREATE PROCEDURE slow_logging(session_context xml, data xml, type varchar) LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  PERFORM pg_sleep(2);
  CALL securitylogging(session_context, data, type);
END $$`)
    const project = tempProject({ ...ns.properties, 'security.logging.proc': `${ns.id}.slow_logging`, 'security.logging.batch.flush.ms': '0' })
    const app = await startDemoProcess(project.dir)
    try {
      const start = Date.now()
      for (let i = 0; i < 10; i++) expect((await client(app.url).post('/login', { username: 'alice', password: 'wonderland' })).location).toBe('/')
      // Ten logins answered in less time than the procedure takes for one event.
      expect(Date.now() - start).toBeLessThan(2000)
      expect((await counts()).total).toBe(0)
      await eventually(async () => expect(await counts()).toEqual({ total: 10, events: 10 }), 40_000, 250)
    } finally {
      expect(await app.stop()).toBe(0)
      project.remove()
    }
  }, 90_000)
})

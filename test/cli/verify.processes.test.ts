import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { CHAIN_KEY, checkpointKeys } from '../helpers/chain-keys.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { startDemoProcess } from '../helpers/demo-process.js'
import { runCli } from '../helpers/run-cli.js'
import { tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

const postgres = DATABASES.find((d) => d.name === 'postgres')!
const keys = checkpointKeys()
const ENV = { AUTHTRAIL_CHAIN_KEY: CHAIN_KEY, AUTHTRAIL_CHECKPOINT_KEY: keys.privatePem }

describe.skipIf(postgres.unavailable !== undefined)('npx authtrail verify after two app instances wrote to one PostgreSQL', () => {
  let ns: TestNamespace
  let project: TempProject
  beforeEach(async () => {
    ns = await postgres.create()
    project = tempProject({ ...ns.properties, 'security.logging.chain': 'on', 'security.logging.batch.size': '4', 'security.logging.batch.flush.ms': '2', 'security.logging.db.pool': '3', 'security.logging.bruteforce.ip.attempts': '0' })
    project.write('checkpoint.pub', keys.publicPem)
  })
  afterEach(async () => {
    project?.remove()
    await ns?.teardown()
  })

  it('exits 0 on the untouched table and 1 naming the row once a row is edited', async () => {
    const servers = await Promise.all([startDemoProcess(project.dir, ENV), startDemoProcess(project.dir, ENV)])
    try {
      await Promise.all(servers.map(async (server, n) => {
        for (let i = 0; i < 15; i++) {
          await client(server.url).post('/login', { username: `nobody-${n}-${i}`, password: 'x' })
          await client(server.url).post('/login', { username: 'alice', password: 'wonderland' })
        }
      }))
      expect(servers[0]!.output()).toContain('tamper evidence on')
    } finally {
      const codes = await Promise.all(servers.map((server) => server.stop()))
      expect(codes, servers.map((s) => s.output()).join('\n')).toEqual([0, 0])
    }
    // The CLI's own reads are on record too: chained when it has the keys, not stored (and said) when not.
    expect((await runCli(['query', '--limit', '5'], project.dir, ENV)).code).toBe(0)
    const keyless = await runCli(['stats'], project.dir, {})
    expect(keyless.code).toBe(0)
    expect(keyless.stderr).toMatch(/warning: this stats was not recorded in the audit trail: .*AUTHTRAIL_CHAIN_KEY is not set/)
    const clean = await runCli(['verify', '--public-key', 'checkpoint.pub'], project.dir, ENV)
    expect(clean.stderr).toBe('')
    expect(clean.stdout).toMatch(/^\d+ chains, 61 links, 61 rows: every chain verifies\n$/)
    expect(clean.code).toBe(0)

    await ns.admin(`UPDATE securitylog SET username = 'nobody' WHERE username = 'nobody-1-3'`)
    const [{ id }] = await ns.client.query<{ id: string }>(`SELECT id::text AS id FROM ${ns.table} WHERE username = 'nobody'`) as [{ id: string }]
    const broken = await runCli(['verify', '--public-key', 'checkpoint.pub', '--format', 'json'], project.dir, ENV)
    expect(broken.code).toBe(1)
    const lines = broken.stdout.trim().split('\n').map((line) => JSON.parse(line))
    expect(lines[0]).toMatchObject({ kind: 'modified', rowId: Number(id) })
    expect(lines.at(-1).summary).toMatchObject({ links: 61, rows: 61, findings: 1 })
  }, 120_000)

  it('refuses to start the app without the chain key, naming the file, the key and the variable but no value', async () => {
    const app = startDemoProcess(project.dir, { AUTHTRAIL_CHECKPOINT_KEY: keys.privatePem, AUTHTRAIL_CHAIN_KEY: '' })
    await expect(app).rejects.toThrow(/generalapp\.properties: key "security\.logging\.chain\.key\.env" = "AUTHTRAIL_CHAIN_KEY": the environment variable AUTHTRAIL_CHAIN_KEY is not set/)
    const short = startDemoProcess(project.dir, { AUTHTRAIL_CHECKPOINT_KEY: keys.privatePem, AUTHTRAIL_CHAIN_KEY: 'short-secret' })
    await expect(short).rejects.toThrow(/AUTHTRAIL_CHAIN_KEY holds 12 characters; a chain key needs at least 32/)
    await expect(short).rejects.not.toThrow(/short-secret/)
    const unsigned = startDemoProcess(project.dir, { AUTHTRAIL_CHAIN_KEY: CHAIN_KEY, AUTHTRAIL_CHECKPOINT_KEY: '' })
    await expect(unsigned).rejects.toThrow(/key "security\.logging\.chain\.signing\.key\.env" = "AUTHTRAIL_CHECKPOINT_KEY": the environment variable AUTHTRAIL_CHECKPOINT_KEY is not set/)
  }, 60_000)

  it('exits 2 for a missing public key or a bad time, and 3 when the database cannot be read', async () => {
    const usage = await runCli(['verify'], project.dir, ENV)
    expect([usage.code, usage.stderr]).toEqual([2, expect.stringContaining('--public-key FILE is required')])
    const since = await runCli(['verify', '--public-key', 'checkpoint.pub', '--since', 'yesterday'], project.dir, ENV)
    expect([since.code, since.stderr]).toEqual([2, expect.stringContaining('--since "yesterday": expected an ISO 8601 time')])
    project.write('config/generalapp.properties', `security.logging.proc = dbo.securitylogging\nsecurity.logging.db = postgres://postgres@127.0.0.1:1/test\n`)
    const unreadable = await runCli(['verify', '--public-key', 'checkpoint.pub'], project.dir, ENV)
    expect(unreadable.code).toBe(3)
    expect(unreadable.stderr).toMatch(/^authtrail verify: cannot read the audit database: /)
  })
})

describe('npx authtrail verify on the embedded store', () => {
  it('verifies what the demo chained into PGlite, once the demo has stopped', async () => {
    const project = tempProject({ 'security.logging.chain': 'on', 'security.logging.bruteforce.ip.attempts': '0' })
    project.write('checkpoint.pub', keys.publicPem)
    try {
      const app = await startDemoProcess(project.dir, ENV)
      try {
        for (let i = 0; i < 5; i++) {
          const browser = client(app.url)
          await client(app.url).post('/login', { username: `someone-${i}`, password: 'x' })
          await browser.post('/login', { username: 'alice', password: 'wonderland' })
          await browser.post('/logout')
        }
        // Read through the running app's socket: the app records the read through its own chained sink.
        const read = await runCli(['query'], project.dir, {})
        expect([read.code, read.stderr]).toEqual([0, ''])
      } finally {
        expect(await app.stop()).toBe(0)
      }
      const result = await runCli(['verify', '--public-key', 'checkpoint.pub'], project.dir, ENV)
      expect([result.code, result.stdout]).toEqual([0, '1 chain, 16 links, 16 rows: every chain verifies\n'])
    } finally {
      project.remove()
    }
  }, 60_000)
})

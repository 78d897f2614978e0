import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { runCli } from '../helpers/run-cli.js'
import { startRunningDemo } from '../helpers/running-demo.js'
import type { RunningDemo } from '../helpers/running-demo.js'

describe('authtrail stats', () => {
  let running: RunningDemo
  const dir = () => running.project.dir

  beforeAll(async () => {
    running = await startRunningDemo()
    for (let i = 0; i < 4; i++) await client(running.url).post('/login', { username: 'mallory', password: `guess-${i}` })
    await client(running.url).post('/login', { username: 'alice', password: 'nope' })
    await client(running.url).post('/login', { username: 'alice', password: 'wonderland' })
    await running.demo.audit.flush()
  })
  afterAll(async () => {
    await running?.close()
  })

  it('counts per type and lists the top failing users and addresses, read through the running app', async () => {
    const result = await runCli(['stats', '--format', 'json'], dir())
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const stats = JSON.parse(result.stdout)
    expect(stats.byType).toEqual([{ type: 'LOGINERROR', count: 5 }, { type: 'LOGIN', count: 1 }])
    expect(stats.failingUsers.map((u: { username: string; count: number }) => [u.username, u.count])).toEqual([['mallory', 4], ['alice', 1]])
    expect(stats.failingIps).toHaveLength(1)
    expect(stats.failingIps[0].count).toBe(5)
  })

  it('prints tables for people, honours --top and the filters, and records itself', async () => {
    const result = await runCli(['stats', '--top', '1', '--since', '1h', '--type', 'LOGINERROR,LOGIN,AUDIT_ACCESS'], dir())
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^\d+ events from \S+ to now\n/)
    expect(result.stdout).toMatch(/Top failing users\nUSER\s+FAILURES\s+LAST \(UTC\)\nmallory\s+4\s/)
    expect(result.stdout).not.toMatch(/^alice\s+1\s/m)
    expect(result.stdout).toMatch(/^AUDIT_ACCESS\s+1$/m)
    const [access] = await running.demo.audit.query({ types: ['AUDIT_ACCESS'], limit: 1 })
    expect(access!.data).toContain('<Action>stats</Action>')
  })

  it('refuses a bad --top or filter with exit 2, naming it', async () => {
    const top = await runCli(['stats', '--top', 'many'], dir())
    expect(top.code).toBe(2)
    expect(top.stderr).toContain('--top "many"')
    const outcome = await runCli(['stats', '--outcome', 'meh'], dir())
    expect(outcome.code).toBe(2)
    expect(outcome.stderr).toContain('--outcome "meh"')
  })
})

import { writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Demo } from '../../demo/app.js'
import { openEmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import { createPostgresProcedureSink } from '../../src/deliver/postgres/postgres-procedure.js'
import { createDescriber } from '../../src/describe/event-xml.js'
import { packageFile } from '../../src/package-files.js'
import type { AuditEvent } from '../../src/types.js'
import { client } from '../helpers/browser-like-client.js'
import { eventually } from '../helpers/eventually.js'
import { runCli } from '../helpers/run-cli.js'
import { startRunningDemo } from '../helpers/running-demo.js'
import type { RunningDemo } from '../helpers/running-demo.js'
import { tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

const parseLines = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))

describe('authtrail query', () => {
  it('prints help for the command and for query, exit 0', async () => {
    const project = tempProject()
    try {
      const top = await runCli(['--help'], project.dir)
      expect(top.code).toBe(0)
      for (const command of ['query', 'stats', 'tail', 'purge']) expect(top.stdout).toContain(command)
      const query = await runCli(['query', '--help'], project.dir)
      expect(query.code).toBe(0)
      for (const flag of ['--type', '--user', '--ip', '--outcome', '--since', '--until', '--before', '--after', '--limit', '--format', '--config']) expect(query.stdout).toContain(flag)
      for (const command of ['stats', 'tail']) {
        const help = await runCli([command, '--help'], project.dir)
        expect(help.code).toBe(0)
        expect(help.stdout).toContain(`Usage: authtrail ${command}`)
      }
    } finally {
      project.remove()
    }
  })

  it('rejects unknown flags and bad values with exit 2 and the value named', async () => {
    const project = tempProject()
    try {
      const unknown = await runCli(['query', '--colour'], project.dir)
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain('--colour')
      const type = await runCli(['query', '--type', 'LOGN'], project.dir)
      expect(type.code).toBe(2)
      expect(type.stderr).toContain('"LOGN"')
      const network = await runCli(['query', '--ip', '10.0.0.0/40'], project.dir)
      expect(network.code).toBe(2)
      expect(network.stderr).toContain('--ip "10.0.0.0/40"')
      const cursor = await runCli(['query', '--before', 'abc'], project.dir)
      expect(cursor.code).toBe(2)
      expect(cursor.stderr).toContain('--before "abc"')
      const since = await runCli(['query', '--since', 'last tuesday'], project.dir)
      expect(since.code).toBe(2)
      expect(since.stderr).toContain('"last tuesday"')
      expect(`${unknown.stderr}${type.stderr}${since.stderr}${network.stderr}${cursor.stderr}`).not.toMatch(/\n\s+at /)
    } finally {
      project.remove()
    }
  })

  it('says where the store should be when there is none, exit 1', async () => {
    const project = tempProject()
    try {
      const result = await runCli(['query'], project.dir)
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(path.join(project.dir, 'data'))
      expect(result.stderr).toContain('security.logging.embedded.dir')
    } finally {
      project.remove()
    }
  })

  describe('with events in the embedded store', () => {
    let running: RunningDemo
    let project: TempProject
    let demo: Demo

    beforeAll(async () => {
      running = await startRunningDemo()
      ;({ project, demo } = running)
      const server = running
      await client(server.url).post('/login', { username: 'alice', password: 'wrong-password' })
      const browser = client(server.url)
      await browser.post('/login', { username: 'alice', password: 'wonderland' })
      await browser.post('/logout')
      await client(server.url).post('/login', { username: 'admin', password: 'change-me' })
      await demo.audit.flush()
    })
    afterAll(async () => {
      await running?.close()
    })

    it('reads through the running app, newest first, as NDJSON with the documented fields', async () => {
      const result = await runCli(['query', '--format', 'json'], project.dir)
      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
      const rows = parseLines(result.stdout)
      expect(rows.map((r) => r.type)).toEqual(['LOGIN', 'LOGOUT', 'LOGIN', 'LOGINERROR'])
      // The same rows the app itself reads; the query itself was recorded after it read them.
      await eventually(async () => expect((await demo.audit.query({ types: ['AUDIT_ACCESS'] })).length).toBeGreaterThan(0))
      expect(rows).toEqual(await demo.audit.query({ limit: 50, types: ['LOGIN', 'LOGOUT', 'LOGINERROR'] }))
      expect(rows.map((r) => r.username)).toEqual(['admin', 'alice', 'alice', 'alice'])
      for (const row of rows) {
        expect(Object.keys(row).sort()).toEqual(['data', 'id', 'ip', 'session_context', 'session_id', 'time', 'type', 'username'])
        expect(row.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
        expect(row.data).toMatch(/^<data>/)
        expect(row.session_context).toMatch(/^<sessioncontext>/)
      }
    })

    it('records each query as AUDIT_ACCESS under the operating-system user, with the filter and the row count', async () => {
      const result = await runCli(['query', '--format', 'json', '--user', 'alice', '--type', 'LOGIN'], project.dir)
      expect(result.code).toBe(0)
      const [access] = await demo.audit.query({ types: ['AUDIT_ACCESS'], limit: 1 })
      expect(access!.username).toBe(os.userInfo().username)
      expect(access!.data).toContain('<Action>query</Action>')
      expect(access!.data).toContain('<Channel>cli</Channel>')
      expect(access!.data).toContain('<Rows>1</Rows>')
      expect(access!.data).toContain('&quot;user&quot;:&quot;alice&quot;')
    })

    it('filters by type, user, address, outcome, time and limit, and pages with --before', async () => {
      const byType = parseLines((await runCli(['query', '--format', 'json', '--type', 'login,logout'], project.dir)).stdout)
      expect(byType.map((r) => r.type)).toEqual(['LOGIN', 'LOGOUT', 'LOGIN'])
      const byUser = parseLines((await runCli(['query', '--format', 'json', '--user', 'admin'], project.dir)).stdout)
      expect(byUser.map((r) => r.username)).toEqual(['admin'])
      const future = await runCli(['query', '--format', 'json', '--since', '2999-01-01T00:00:00Z'], project.dir)
      expect(future.stdout).toBe('')
      const recent = parseLines((await runCli(['query', '--format', 'json', '--since', '1h', '--limit', '1', '--type', 'LOGIN'], project.dir)).stdout)
      expect(recent).toHaveLength(1)
      expect(recent[0].username).toBe('admin')
      const until = parseLines((await runCli(['query', '--format', 'json', '--until', '2000-01-01T00:00:00Z'], project.dir)).stdout)
      expect(until).toEqual([])
      const failures = parseLines((await runCli(['query', '--format', 'json', '--outcome', 'failure'], project.dir)).stdout)
      expect(failures.map((r) => r.type)).toEqual(['LOGINERROR'])
      const loopback = parseLines((await runCli(['query', '--format', 'json', '--ip', '127.0.0.0/8', '--type', 'LOGIN,LOGINERROR'], project.dir)).stdout)
      expect(loopback).toHaveLength(3)
      const first = await runCli(['query', '--format', 'json', '--type', 'LOGIN,LOGOUT,LOGINERROR', '--limit', '3'], project.dir)
      const next = /^more: --before (\S+)$/m.exec(first.stderr)
      expect(next).not.toBeNull()
      const second = parseLines((await runCli(['query', '--format', 'json', '--type', 'LOGIN,LOGOUT,LOGINERROR', '--limit', '3', '--before', next![1]!], project.dir)).stdout)
      expect(second.map((r) => r.type)).toEqual(['LOGINERROR'])
    })

    it('prints a table for people', async () => {
      const result = await runCli(['query', '--limit', '2', '--type', 'LOGIN'], project.dir)
      expect(result.code).toBe(0)
      const lines = result.stdout.trim().split('\n')
      expect(lines[0]).toMatch(/^ID\s+TIME \(UTC\)\s+TYPE\s+USER\s+IP\s+SESSION$/)
      expect(lines).toHaveLength(3)
      expect(lines[1]).toContain('admin')
      expect(lines[2]).toContain('alice')
    })
  })

  it('opens the store itself when no app holds it, and returns the XML exactly as passed to the procedure', async () => {
    const project = tempProject()
    try {
      const dir = path.join(project.dir, 'data')
      const store = await openEmbeddedStore({ dir, schema: 'dbo', table: 'dbo.securitylog', installFile: packageFile('procedures/securitylogging.sql'), serve: false })
      const event: AuditEvent = {
        id: '0b7b8a56-52a5-4c43-9bb2-8b35a2f6f2f1', type: 'LOGIN', time: Date.UTC(2026, 0, 2, 3, 4, 5, 678), sessionId: 'ABC', username: 'o\'brien & <co>',
        userId: '7', ip: '192.0.2.1', host: '192.0.2.1', userAgent: 'curl/8.0 "quoted" \u0001', method: '', message: '', urlParams: [['lang', 'fr & en']], profile: {},
      }
      const described = createDescriber()(event)
      await (await createPostgresProcedureSink(store.client, 'dbo.securitylogging', async () => {})).deliver([event])
      await store.close()
      const result = await runCli(['query', '--format', 'json'], project.dir)
      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
      const [row] = parseLines(result.stdout)
      expect(row.data).toBe(described.data)
      expect(row.session_context).toBe(described.sessionContext)
      expect(row.username).toBe('o\'brien & <co>')
      expect(row.time).toBe('2026-01-02T03:04:05.678Z')
    } finally {
      project.remove()
    }
  })

  it('refuses, naming the holder, when a live process holds the store without answering queries', async () => {
    const project = tempProject()
    try {
      const lock = project.write('data/authtrail.lock', JSON.stringify({ pid: process.pid, socket: path.join(project.dir, 'data/nothing.sock'), since: '2026-11-23T00:00:00.000Z' }))
      writeFileSync(path.join(project.dir, 'data/PG_VERSION'), '17\n')
      const result = await runCli(['query'], project.dir)
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`process ${process.pid}`)
      expect(result.stderr).toContain('in use')
      expect(lock).toBeTruthy()
    } finally {
      project.remove()
    }
  })
})

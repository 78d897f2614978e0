import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import express from 'express'
import { createDemo } from '../../demo/app.js'
import type { Demo } from '../../demo/app.js'
import { openEmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import { createPostgresProcedureSink } from '../../src/deliver/postgres/postgres-procedure.js'
import { createDescriber } from '../../src/describe/event-xml.js'
import { packageFile } from '../../src/package-files.js'
import type { AuditEvent } from '../../src/types.js'
import { client, listen } from '../helpers/browser-like-client.js'
import { runCli } from '../helpers/run-cli.js'
import { memoryLogger, tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

const parseLines = (stdout: string) => stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))

describe('authtrail query', () => {
  it('prints help for the command and for query, exit 0', async () => {
    const project = tempProject()
    try {
      const top = await runCli(['--help'], project.dir)
      expect(top.code).toBe(0)
      expect(top.stdout).toContain('query')
      const query = await runCli(['query', '--help'], project.dir)
      expect(query.code).toBe(0)
      for (const flag of ['--type', '--user', '--since', '--limit', '--format', '--config']) expect(query.stdout).toContain(flag)
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
      const since = await runCli(['query', '--since', 'last tuesday'], project.dir)
      expect(since.code).toBe(2)
      expect(since.stderr).toContain('"last tuesday"')
      expect(`${unknown.stderr}${type.stderr}${since.stderr}`).not.toMatch(/\n\s+at /)
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
    let project: TempProject
    let demo: Demo
    let server: Awaited<ReturnType<typeof listen>>

    beforeAll(async () => {
      project = tempProject()
      demo = await createDemo({ express, config: project.config, cwd: project.dir, sessionTimeoutSeconds: 60, logger: memoryLogger() })
      server = await listen(demo.app)
      await client(server.url).post('/login', { username: 'alice', password: 'wrong-password' })
      const browser = client(server.url)
      await browser.post('/login', { username: 'alice', password: 'wonderland' })
      await browser.post('/logout')
      await client(server.url).post('/login', { username: 'admin', password: 'change-me' })
      await demo.audit.flush()
    })
    afterAll(async () => {
      await server?.close()
      await demo?.audit.close()
      project?.remove()
    })

    it('reads through the running app, newest first, as NDJSON with the documented fields', async () => {
      const result = await runCli(['query', '--format', 'json'], project.dir)
      expect(result.stderr).toBe('')
      expect(result.code).toBe(0)
      const rows = parseLines(result.stdout)
      expect(rows.map((r) => r.type)).toEqual(['LOGIN', 'LOGOUT', 'LOGIN', 'LOGINERROR'])
      expect(rows.map((r) => r.username)).toEqual(['admin', 'alice', 'alice', 'alice'])
      for (const row of rows) {
        expect(Object.keys(row).sort()).toEqual(['data', 'id', 'ip', 'session_context', 'session_id', 'time', 'type', 'username'])
        expect(row.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
        expect(row.data).toMatch(/^<data>/)
        expect(row.session_context).toMatch(/^<sessioncontext>/)
      }
      // The same rows the app itself reads.
      expect(rows).toEqual(await demo.audit.query({ limit: 50 }))
    })

    it('filters by type, user, time and limit', async () => {
      const byType = parseLines((await runCli(['query', '--format', 'json', '--type', 'login,logout'], project.dir)).stdout)
      expect(byType.map((r) => r.type)).toEqual(['LOGIN', 'LOGOUT', 'LOGIN'])
      const byUser = parseLines((await runCli(['query', '--format', 'json', '--user', 'admin'], project.dir)).stdout)
      expect(byUser.map((r) => r.username)).toEqual(['admin'])
      const future = await runCli(['query', '--format', 'json', '--since', '2999-01-01T00:00:00Z'], project.dir)
      expect(future.stdout).toBe('')
      const recent = parseLines((await runCli(['query', '--format', 'json', '--since', '1h', '--limit', '1'], project.dir)).stdout)
      expect(recent).toHaveLength(1)
      expect(recent[0].username).toBe('admin')
      const until = parseLines((await runCli(['query', '--format', 'json', '--until', '2000-01-01T00:00:00Z'], project.dir)).stdout)
      expect(until).toEqual([])
    })

    it('prints a table for people', async () => {
      const result = await runCli(['query', '--limit', '2'], project.dir)
      expect(result.code).toBe(0)
      const lines = result.stdout.trim().split('\n')
      expect(lines[0]).toMatch(/^ID\s+TIME \(UTC\)\s+TYPE\s+USER\s+IP\s+SESSION$/)
      expect(lines).toHaveLength(3)
      expect(lines[1]).toContain('admin')
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

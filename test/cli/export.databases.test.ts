import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openProcedureSink } from '../../src/deliver/open-procedure-sink.js'
import { auditPages } from '../../src/review/audit-pages.js'
import { queryAuditInserted } from '../../src/review/audit-query.js'
import { auditEvent } from '../helpers/audit-event.js'
import { DATABASES, namespacePerTest } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'
import { runCli } from '../helpers/run-cli.js'
import { tempProject } from '../helpers/temp-project.js'

const KEY = 'pseudonym-key-0123456789abcdef0123456789'

async function store(ns: TestNamespace, n: number): Promise<void> {
  const sink = (await openProcedureSink(ns.client, ns.proc, async () => {}))!
  const events = Array.from({ length: n }, (_, i) => auditEvent(i % 2 === 0 ? 'LOGIN' : 'LOGINERROR', { username: i % 10 === 0 ? 'carol.smith' : `user${i % 7}`, time: Date.UTC(2026, 10, 1) + i * 1000 }))
  for (let i = 0; i < n; i += 1000) await sink.deliver(events.slice(i, i + 1000))
}

for (const db of DATABASES) {
  describe.skipIf(db.unavailable !== undefined)(`audit pages on ${db.name}`, () => {
    const ns = namespacePerTest(db)

    it('read every matching row once, in id order, a page at a time, with the query filters and a total limit', async () => {
      await store(ns, 250)
      const ids: number[] = []
      for await (const row of auditPages(read(ns), {}, { pageSize: 60 })) ids.push(row.id)
      expect(ids).toHaveLength(250)
      expect([...ids].sort((a, b) => a - b)).toEqual(ids)
      expect(new Set(ids).size).toBe(250)
      const carol: string[] = []
      for await (const row of auditPages(read(ns), { user: 'carol.smith', types: ['LOGIN'], since: '2026-11-01T00:01:00Z' }, { pageSize: 7 })) carol.push(row.time)
      expect(carol).toHaveLength(19)
      const limited = []
      for await (const row of auditPages(read(ns), {}, { limit: 75, pageSize: 60 })) limited.push(row)
      expect(limited).toHaveLength(75)
    })
  })
}

/** The rows of a namespace stored after a row id, as the CLI's review source reads them. */
const read = (ns: TestNamespace) => (filter: Parameters<typeof queryAuditInserted>[2], afterId: string) => queryAuditInserted(ns.client, ns.table, filter, afterId)

const postgres = DATABASES.find((d) => d.name === 'postgres')!

describe.skipIf(postgres.unavailable !== undefined)('npx authtrail export on PostgreSQL', () => {
  let ns: TestNamespace
  beforeEach(async () => {
    ns = await postgres.create()
    await store(ns, 12_000)
  })
  afterEach(async () => {
    await ns?.teardown()
  })

  it('streams 12,000 rows as ECS NDJSON, and with --pseudonymize leaves the real username nowhere', async () => {
    const project = tempProject(ns.properties)
    try {
      const ecs = await runCli(['export', '--format', 'ecs'], project.dir)
      expect(ecs.stderr).toBe('')
      const lines = ecs.stdout.trim().split('\n').map((line) => JSON.parse(line))
      expect(lines).toHaveLength(12_000)
      expect(lines[0]).toMatchObject({ event: { action: 'login' }, user: { name: 'carol.smith' } })
      expect(lines.map((l) => l.authtrail.id)).toEqual([...lines.map((l) => l.authtrail.id)].sort((a, b) => a - b))

      const edx = await runCli(['export', '--format', 'edx', '--pseudonymize', '--user', 'carol.smith', '--limit', '500'], project.dir, { AUTHTRAIL_PSEUDONYM_KEY: KEY })
      const records = edx.stdout.trim().split('\n').map((line) => JSON.parse(line))
      expect(records).toHaveLength(500)
      expect(edx.stdout).not.toContain('carol')
      expect(new Set(records.map((r) => r.username)).size).toBe(1)
      const again = await runCli(['export', '--format', 'ecs', '--pseudonymize', '--user', 'carol.smith', '--limit', '1'], project.dir, { AUTHTRAIL_PSEUDONYM_KEY: KEY })
      expect(JSON.parse(again.stdout).user.name).toBe(records[0].username)
    } finally {
      project.remove()
    }
  }, 120_000)

  it('refuses --pseudonymize without the key, naming the variable, and a missing --format', async () => {
    const project = tempProject(ns.properties)
    try {
      const noKey = await runCli(['export', '--format', 'edx', '--pseudonymize'], project.dir, { AUTHTRAIL_PSEUDONYM_KEY: '' })
      expect([noKey.code, noKey.stdout]).toEqual([2, ''])
      expect(noKey.stderr).toContain('--pseudonymize needs the key in the environment variable AUTHTRAIL_PSEUDONYM_KEY')
      const noFormat = await runCli(['export'], project.dir)
      expect([noFormat.code, noFormat.stderr]).toEqual([2, expect.stringContaining('--format is required: expected ecs or edx')])
    } finally {
      project.remove()
    }
  })
})

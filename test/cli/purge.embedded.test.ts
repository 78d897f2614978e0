import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import { createPostgresProcedureSink } from '../../src/deliver/postgres/postgres-procedure.js'
import { packageFile } from '../../src/package-files.js'
import { auditEvent } from '../helpers/audit-event.js'
import { runCli } from '../helpers/run-cli.js'
import { tempProject } from '../helpers/temp-project.js'

const DAY = 86_400_000

describe('authtrail purge', () => {
  it('requires --older-than, exit 2', async () => {
    const project = tempProject()
    try {
      const result = await runCli(['purge'], project.dir)
      expect(result.code).toBe(2)
      expect(result.stderr).toContain('--older-than')
    } finally {
      project.remove()
    }
  })

  it('refuses to purge, removing nothing, when tamper evidence is on and the purge could not be chained: exit 2 naming the variable', async () => {
    const project = tempProject({ 'security.logging.chain': 'on' })
    try {
      const store = await openEmbeddedStore({ dir: path.join(project.dir, 'data'), schema: 'dbo', table: 'dbo.securitylog', installFile: packageFile('procedures/securitylogging.sql'), serve: false })
      await (await createPostgresProcedureSink(store.client, 'dbo.securitylogging', async () => {})).deliver([auditEvent('LOGIN', { time: Date.now() - 200 * DAY })])
      const before = await store.client.query<{ n: string }>('SELECT count(*)::text AS n FROM dbo.securitylog')
      await store.close()
      const purge = await runCli(['purge', '--older-than', '90d'], project.dir, { AUTHTRAIL_CHAIN_KEY: '', AUTHTRAIL_CHECKPOINT_KEY: '' })
      expect([purge.code, purge.stdout]).toEqual([2, ''])
      expect(purge.stderr).toMatch(/AUTHTRAIL_CHAIN_KEY is not set/)
      const again = await openEmbeddedStore({ dir: path.join(project.dir, 'data'), schema: 'dbo', table: 'dbo.securitylog', serve: false })
      try {
        expect(await again.client.query('SELECT count(*)::text AS n FROM dbo.securitylog')).toEqual(before)
      } finally {
        await again.close()
      }
    } finally {
      project.remove()
    }
  })

  it('removes old records from the embedded store, says how many, dropped or deleted, leaves recent ones and records the purge', async () => {
    const project = tempProject()
    try {
      const store = await openEmbeddedStore({ dir: path.join(project.dir, 'data'), schema: 'dbo', table: 'dbo.securitylog', installFile: packageFile('procedures/securitylogging.sql'), serve: false })
      // The 200-day-old record's month gets a partition of its own, which the purge drops whole.
      const month = new Date(Date.now() - 200 * DAY)
      const [from, to] = [0, 1].map((n) => new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + n, 1)).toISOString())
      await store.exec(`CREATE TABLE dbo.securitylog_old PARTITION OF dbo.securitylog FOR VALUES FROM ('${from}') TO ('${to}')`)
      const sink = await createPostgresProcedureSink(store.client, 'dbo.securitylogging', async () => {})
      await sink.deliver([200, 120, 5, 0].map((age, i) => auditEvent('LOGIN', { username: `u${i}`, time: Date.now() - age * DAY })))
      await store.close()

      const purge = await runCli(['purge', '--older-than', '90d'], project.dir)
      expect(purge.stderr).toBe('')
      expect(purge.code).toBe(0)
      expect(purge.stdout).toMatch(/^dropped 1 partitions \(dbo\.securitylog_old\) holding 1 rows and deleted 1 rows older than \d{4}-/)
      const left = await runCli(['query', '--format', 'json', '--type', 'LOGIN'], project.dir)
      expect(left.stdout.trim().split('\n').map((line) => JSON.parse(line).username)).toEqual(['u3', 'u2'])
      // The purge itself is on record, after the rows it removed.
      const access = await runCli(['query', '--format', 'json', '--type', 'AUDIT_ACCESS'], project.dir)
      const [, purged] = access.stdout.trim().split('\n').map((line) => JSON.parse(line))
      expect(purged.username).toBe(os.userInfo().username)
      expect(purged.data).toContain('<Action>purge</Action>')
      expect(purged.data).toContain('<Rows>2</Rows>')
    } finally {
      project.remove()
    }
  })
})

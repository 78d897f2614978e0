import { EventEmitter } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAdminPage } from '../../src/review/admin-page/admin-router.js'
import type { AuditAccess } from '../../src/types.js'
import { auditEvent, deliverEvents } from '../helpers/audit-event.js'
import { DATABASES } from '../helpers/databases.js'
import type { TestNamespace } from '../helpers/databases.js'

const pglite = DATABASES.find((db) => db.name === 'pglite')!

/** A response whose reader stops reading: every write fills the buffer, and no drain ever comes. */
function stalledResponse() {
  const res = Object.assign(new EventEmitter(), {
    statusCode: 200,
    headersSent: false,
    written: 0,
    setHeader: () => undefined,
    write: () => {
      res.written++
      return false
    },
    end: () => undefined,
    destroy: () => undefined,
  })
  return res
}

describe('an export from the audit page', () => {
  let ns: TestNamespace
  beforeAll(async () => {
    ns = await pglite.create()
    await deliverEvents(ns, Array.from({ length: 5 }, (_, i) => auditEvent('LOGIN', { username: `u${i}` })))
  })
  afterAll(async () => {
    await ns?.teardown()
  })

  it('cut off by the reader while it waits for the buffer to drain, ends and is recorded with the rows that went out', async () => {
    const recorded: Array<Omit<AuditAccess, 'channel'>> = []
    const page = createAdminPage({
      path: '/admin/audit',
      isAdmin: () => true,
      source: { client: ns.client, table: ns.table },
      userOf: () => ({ username: 'admin' }),
      usernameOf: () => 'admin',
      key: Buffer.alloc(32, 1),
      record: (_req, access) => recorded.push(access),
      logger: { info: () => {}, warn: () => {}, error: () => {} },
    })
    const res = stalledResponse()
    page({ method: 'GET', url: '/admin/audit/export.csv', headers: {}, sessionID: 's' }, res, () => {})
    await expect.poll(() => res.written).toBe(2)
    res.emit('close')
    await expect.poll(() => recorded).toEqual([expect.objectContaining({ action: 'export', rows: 1 })])
  })
})

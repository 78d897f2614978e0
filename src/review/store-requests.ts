/**
 * What the process holding the embedded store answers on its unix socket (served by
 * deliver/pglite/pglite-database.ts), so the CLI reads through a running app instead of opening a directory
 * PGlite lets one process use. One JSON request line in, one JSON reply line out. Everything is a read,
 * except `record`, which only calls the logging procedure with an AUDIT_ACCESS event: the CLI saying
 * who read what, the way the app records its own admin page.
 */
import type { SqlClient } from '../deliver/sql-client.js'
import type { AuditFilter } from './audit-filter.js'
import { queryAuditInserted, queryAuditPage } from './audit-query.js'
import { auditStats } from './audit-stats.js'
import type { AuditEvent } from '../types.js'

/** One request on the embedded store's socket. */
export type StoreRequest =
  | { readonly op: 'query'; readonly filter?: AuditFilter }
  | { readonly op: 'page'; readonly filter?: AuditFilter }
  | { readonly op: 'inserted'; readonly filter?: AuditFilter; readonly afterId: string }
  | { readonly op: 'stats'; readonly filter?: AuditFilter; readonly top?: number }
  | { readonly op: 'record'; readonly event: AuditEvent }

/** Answers one request against the store's client; throws with a message to send back. */
export async function answerStoreRequest(client: SqlClient, table: string, request: StoreRequest, record?: (event: AuditEvent) => Promise<void>): Promise<unknown> {
  const filter = request.op !== 'record' ? request.filter ?? {} : {}
  switch (request.op) {
    case 'query':
      return { rows: (await queryAuditPage(client, table, filter)).rows }
    case 'page':
      return { page: await queryAuditPage(client, table, filter) }
    case 'inserted':
      if (!/^\d{1,19}$/.test(String(request.afterId))) throw new Error(`afterId ${JSON.stringify(request.afterId)} is not a row id`)
      return { rows: await queryAuditInserted(client, table, filter, request.afterId) }
    case 'stats':
      return { stats: await auditStats(client, table, filter, request.top) }
    case 'record':
      if (request.event?.type !== 'AUDIT_ACCESS') throw new Error('only AUDIT_ACCESS events are recorded through the socket; events of the app come from the app')
      if (!record) throw new Error('this store records no events')
      // Through the app's own sink: described there, and chained when tamper evidence is on.
      await record(request.event)
      return { ok: true }
    default:
      throw new Error(`unknown request ${JSON.stringify((request as { op?: unknown }).op)}`)
  }
}

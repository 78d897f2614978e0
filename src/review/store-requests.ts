/**
 * What the process holding the embedded store answers on its unix socket (served by
 * deliver/pglite/pglite-database.ts), so the CLI reads through a running app instead of opening a directory
 * PGlite lets one process use. One JSON request line in, one JSON reply line out. Everything is a read,
 * except `record`: the CLI saying who read what, which the app turns into an AUDIT_ACCESS event of its
 * own (its id and time, channel `cli`), the way it records its own admin page.
 */
import type { SqlClient } from '../deliver/sql-client.js'
import type { AuditFilter } from './audit-filter.js'
import { queryAuditInserted, queryAuditPage } from './audit-query.js'
import { auditStats } from './audit-stats.js'
import { AUDIT_ACCESS_ACTIONS } from '../types.js'
import type { AuditAccess } from '../types.js'

/** What a CLI read sends to be recorded: what it did, and the operating-system account and host it ran as. */
export interface SocketAccess {
  readonly access: Omit<AuditAccess, 'channel'>
  readonly account: string
  readonly host: string
}

/** One request on the embedded store's socket. */
export type StoreRequest =
  | { readonly op: 'page'; readonly filter?: AuditFilter }
  | { readonly op: 'inserted'; readonly filter?: AuditFilter; readonly afterId: string }
  | { readonly op: 'stats'; readonly filter?: AuditFilter; readonly top?: number }
  | ({ readonly op: 'record' } & SocketAccess)

/** Answers one request against the store's client; throws with a message to send back. */
export async function answerStoreRequest(client: SqlClient, table: string, request: StoreRequest, record?: (access: SocketAccess) => Promise<void>): Promise<unknown> {
  const filter = request.op !== 'record' ? request.filter ?? {} : {}
  switch (request.op) {
    case 'page':
      return { page: await queryAuditPage(client, table, filter) }
    case 'inserted':
      if (!/^\d{1,19}$/.test(String(request.afterId))) throw new Error(`afterId ${JSON.stringify(request.afterId)} is not a row id`)
      return { rows: await queryAuditInserted(client, table, filter, request.afterId) }
    case 'stats':
      return { stats: await auditStats(client, table, filter, request.top) }
    case 'record':
      if (!record) throw new Error('this store records no events')
      // Through the app's own sink: described there, and chained when tamper evidence is on.
      await record(socketAccess(request))
      return { ok: true }
    default:
      throw new Error(`unknown request ${JSON.stringify((request as { op?: unknown }).op)}`)
  }
}

/** Checks a record request's fields: a client of the socket says what it read, nothing more. */
function socketAccess(request: SocketAccess): SocketAccess {
  const { access, account, host } = request
  const text = (value: unknown, name: string, max: number): string => {
    if (typeof value !== 'string' || value.length > max) throw new Error(`record: ${name} must be a string of at most ${max} characters`)
    return value
  }
  if (!(AUDIT_ACCESS_ACTIONS as readonly unknown[]).includes(access?.action)) throw new Error(`record: action must be one of ${AUDIT_ACCESS_ACTIONS.join(', ')}`)
  if (!Number.isSafeInteger(access.rows) || access.rows < 0) throw new Error('record: rows must be a whole number')
  return { access: { action: access.action, filter: text(access.filter, 'filter', 8192), rows: access.rows }, account: text(account, 'account', 256), host: text(host, 'host', 256) }
}

import type { SqlClient } from '../../deliver/sql-client.js'
import { AUDIT_EVENT_TYPES } from '../../types.js'
import { activeSessions } from '../active-sessions.js'
import { describeFilter, FILTER_PARAMS, FilterError, parseAuditFilter, parseDuration } from '../audit-filter.js'
import type { AuditFilter, FilterParams } from '../audit-filter.js'
import { queryAuditPage } from '../audit-query.js'
import { auditStats, failureBursts } from '../audit-stats.js'
import { renderEvents } from './render-events.js'
import type { PageContext } from './render-layout.js'
import { renderFailures, renderSessions } from './render-views.js'

/** The events of a user's timeline: everything about sessions, not authtrail's records about itself. */
export const TIMELINE_TYPES = AUDIT_EVENT_TYPES.filter((type) => !type.startsWith('AUDIT_'))

/** Rows per page on the admin page: the default, and the most a `limit` parameter may ask for. */
export const PAGE_SIZE = 100
/** @see PAGE_SIZE */
export const MAX_PAGE_SIZE = 500

/** The audit table the views read: the instance's own database. */
export interface ViewSource {
  readonly client: SqlClient
  readonly table: string
}

/** A rendered view, and what it read (recorded as AUDIT_ACCESS), when it read anything. */
export interface ViewResult {
  readonly status: number
  readonly body: string
  readonly access: { readonly filter: string; readonly rows: number } | undefined
}

/** A query string as the filter parser reads it. */
export function filterParams(params: URLSearchParams): FilterParams {
  const out: Record<string, string | string[]> = {}
  for (const name of FILTER_PARAMS) {
    if (name === 'type') out.type = params.getAll('type')
    else if (params.has(name)) out[name] = params.get(name)!
  }
  return out
}

/** Parses a page's filter; messages name the query parameter (`user`, `ip`...) and the value. */
export function pageFilter(params: URLSearchParams): AuditFilter {
  return parseAuditFilter(filterParams(params), { label: (name) => name, defaultLimit: PAGE_SIZE, maxLimit: MAX_PAGE_SIZE })
}

function count(params: URLSearchParams, name: string, fallback: number, max: number): number {
  const text = params.get(name) || String(fallback)
  if (!/^\d{1,6}$/.test(text) || Number(text) < 1 || Number(text) > max) throw new FilterError(`${name} ${JSON.stringify(text)}: expected a whole number from 1 to ${max}`)
  return Number(text)
}

async function read(context: PageContext, params: URLSearchParams, source: ViewSource): Promise<ViewResult> {
  const { client, table } = source
  switch (context.view) {
    case 'events':
    case 'timeline': {
      const parsed = pageFilter(params)
      if (context.view === 'timeline' && parsed.user === undefined) {
        return { status: 200, body: renderEvents(context, { params, page: undefined, error: undefined }), access: undefined }
      }
      const filter = context.view === 'timeline' ? { ...parsed, types: parsed.types?.filter((t) => TIMELINE_TYPES.includes(t)) ?? TIMELINE_TYPES } : parsed
      const page = await queryAuditPage(client, table, filter)
      return { status: 200, body: renderEvents(context, { params, page, error: undefined }), access: { filter: describeFilter(parsed, { view: context.view }), rows: page.rows.length } }
    }
    case 'failures': {
      const { limit: _unused, ...filter } = pageFilter(params)
      const windowMs = parseDuration('window', params.get('window') || '5m')
      const min = count(params, 'min', 5, 100_000)
      const stats = await auditStats(client, table, filter, 10)
      const bursts = await failureBursts(client, table, filter, windowMs, min, 100)
      const access = { filter: describeFilter({ ...filter, since: stats.since }, { view: 'failures', window: windowMs, min }), rows: stats.total }
      return { status: 200, body: renderFailures(context, { params, stats, bursts, error: undefined }), access }
    }
    case 'sessions': {
      const user = params.get('user') || undefined
      if (user !== undefined && user.length > 1024) throw new FilterError('user: longer than 1024 characters')
      const sessions = await activeSessions(client, table, { ...(user !== undefined ? { user } : {}), limit: MAX_PAGE_SIZE })
      return { status: 200, body: renderSessions(context, { params, sessions, error: undefined }), access: { filter: JSON.stringify({ view: 'sessions', ...(user !== undefined ? { user } : {}) }), rows: sessions.length } }
    }
  }
}

/** The view's page without data, saying what went wrong: a bad parameter (400) or an unreadable store. */
function failed(context: PageContext, params: URLSearchParams, status: number, error: string): ViewResult {
  const model = { params, error }
  const body =
    context.view === 'failures' ? renderFailures(context, { ...model, stats: undefined, bursts: [] })
    : context.view === 'sessions' ? renderSessions(context, { ...model, sessions: undefined })
    : renderEvents(context, { ...model, page: undefined })
  return { status, body, access: undefined }
}

/**
 * Reads and renders one view. A bad filter is a 400 naming the parameter; a database error is a 503
 * with its message (the reader is an administrator), never a stack trace.
 */
export async function showView(context: PageContext, params: URLSearchParams, source: ViewSource, onError: (err: Error) => void): Promise<ViewResult> {
  try {
    return await read(context, params, source)
  } catch (err) {
    if (err instanceof FilterError) return failed(context, params, 400, err.message)
    onError(err as Error)
    const message = (err as Error).message.replace(/^authtrail: /, '')
    const hint = /securitylog_inet|securitylog_session/.test(message) ? ' Deploy procedures/securitylogging.sql again to add what is missing.' : ''
    return failed(context, params, 503, `The audit trail could not be read: ${message}.${hint}`)
  }
}

import { randomBytes } from 'node:crypto'
import type { Logger } from '../../logger.js'
import type { AuditAccess } from '../../types.js'
import { describeFilter, FilterError, parseDuration } from '../audit-filter.js'
import { eachAuditRow } from '../audit-query.js'
import { csvHeader, csvLine } from '../export-csv.js'
import { ndjsonLine } from '../export-ndjson.js'
import { purgeAudit, purgedRows } from '../purge.js'
import { ADMIN_SCRIPT, ADMIN_STYLE } from './admin-assets.js'
import { pageFilter, showView } from './audit-views.js'
import type { ViewSource } from './audit-views.js'
import { createCsrf, sameOrigin } from './csrf.js'
import { plainPage, VIEWS } from './render-layout.js'
import type { PageContext, ViewName } from './render-layout.js'

/** The parts of a request the admin page reads: Node's, plus what Express and express-session add. */
export interface AdminRequest extends NodeJS.ReadableStream {
  readonly method?: string
  readonly url?: string
  readonly originalUrl?: string
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly sessionID?: string
  readonly body?: unknown
  readonly protocol?: string
  readonly socket?: { readonly encrypted?: boolean }
}

/** The parts of Node's ServerResponse it writes. */
export interface AdminResponse {
  statusCode: number
  readonly headersSent: boolean
  setHeader(name: string, value: string | string[]): unknown
  write(chunk: string): boolean
  end(chunk?: string): unknown
  once(event: 'drain' | 'close', listener: () => void): unknown
  destroy(err?: Error): unknown
}

/** What {@link createAdminPage} needs from the running instance. */
export interface AdminPageOptions {
  /** Where the page is mounted, validated: `/admin/audit`. */
  readonly path: string
  readonly isAdmin: (user: unknown) => boolean | Promise<boolean>
  readonly source: ViewSource
  /** The user passport put on the request, undefined when nobody is signed in. */
  readonly userOf: (req: unknown) => unknown
  readonly usernameOf: (user: unknown) => string
  /** authtrail's session key, from which the CSRF key is derived. */
  readonly key: Buffer
  /** Records an admin's read, export or purge (AUDIT_ACCESS) for this request's user and session. */
  readonly record: (req: unknown, access: Omit<AuditAccess, 'channel'>) => void
  readonly logger: Logger
}

const EXPORTS = { '/export.csv': { type: 'text/csv; charset=utf-8', header: csvHeader, line: csvLine }, '/export.ndjson': { type: 'application/x-ndjson; charset=utf-8', header: () => '', line: ndjsonLine } } as const
const MAX_FORM_BYTES = 16 * 1024

/**
 * Headers of every admin response. The CSP allows only this response's nonce for script and style (no
 * inline script, no handler attribute, no `javascript:` URL can run), nothing from elsewhere, and no framing.
 */
function secure(res: AdminResponse, nonce: string): void {
  res.setHeader('content-security-policy', `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'`)
  res.setHeader('x-content-type-options', 'nosniff')
  res.setHeader('x-frame-options', 'DENY')
  res.setHeader('referrer-policy', 'no-referrer')
  res.setHeader('cache-control', 'no-store')
  res.setHeader('cross-origin-opener-policy', 'same-origin')
  res.setHeader('cross-origin-resource-policy', 'same-origin')
}

function send(res: AdminResponse, status: number, type: string, body: string): void {
  res.statusCode = status
  res.setHeader('content-type', type)
  res.end(body)
}

const sendPage = (res: AdminResponse, status: number, body: string) => send(res, status, 'text/html; charset=utf-8', body)

/** The submitted form: from a body parser the app mounted, or read here (urlencoded only, 16 KB). */
async function formOf(req: AdminRequest): Promise<URLSearchParams> {
  if (req.body !== null && typeof req.body === 'object' && Object.keys(req.body).length > 0) {
    return new URLSearchParams(Object.entries(req.body as Record<string, unknown>).filter((entry): entry is [string, string] => typeof entry[1] === 'string'))
  }
  if (!String(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return new URLSearchParams()
  let text = ''
  for await (const chunk of req) {
    text += String(chunk)
    if (text.length > MAX_FORM_BYTES) throw new FilterError(`the form is larger than ${MAX_FORM_BYTES} bytes`)
  }
  return new URLSearchParams(text)
}

/**
 * The admin page as middleware: requests under `path` are answered here (admins only), every other
 * request goes on. Views are GET; the one state-changing action, purge, is a POST with a CSRF token.
 */
export function createAdminPage(options: AdminPageOptions): (req: unknown, res: unknown, next: (err?: unknown) => void) => void {
  const { path, logger } = options
  const csrf = createCsrf(options.key)

  async function handle(req: AdminRequest, res: AdminResponse, pathname: string, query: string): Promise<void> {
    const nonce = randomBytes(16).toString('base64')
    secure(res, nonce)
    const user = options.userOf(req)
    if (user === undefined || user === null) {
      return sendPage(res, 401, plainPage('Sign in required', 'Sign in with an administrator account to read the audit trail.', { href: '/', label: 'Sign in' }))
    }
    let admin = false
    try {
      admin = (await options.isAdmin(user)) === true
    } catch (err) {
      logger.error(`the isAdmin option threw, so the audit page was refused: ${(err as Error).message}`)
    }
    if (!admin) return sendPage(res, 403, plainPage('Not allowed', 'The audit trail is for administrators only.'))

    const sub = pathname.slice(path.length)
    const method = req.method ?? 'GET'
    const reading = method === 'GET' || method === 'HEAD'
    if (sub === '/purge' ? method !== 'POST' : !reading) {
      res.setHeader('allow', sub === '/purge' ? 'POST' : 'GET, HEAD')
      return sendPage(res, 405, plainPage('Method not allowed', `${method} is not accepted here.`))
    }
    if (sub === '/admin.js') return send(res, 200, 'text/javascript; charset=utf-8', ADMIN_SCRIPT)
    if (sub === '/admin.css') return send(res, 200, 'text/css; charset=utf-8', ADMIN_STYLE)
    const params = new URLSearchParams(query)
    if (sub === '/export.csv' || sub === '/export.ndjson') return exportRows(req, res, params, sub)
    if (sub === '/purge') return purge(req, res)
    if (sub !== '' && sub !== '/') return sendPage(res, 404, plainPage('Not found', 'There is no such page in the audit trail.', { href: path, label: 'Events' }))

    const view = params.get('view') ?? 'events'
    if (!(VIEWS as readonly string[]).includes(view)) {
      return sendPage(res, 400, plainPage('Bad request', `view ${JSON.stringify(view.slice(0, 40))}: expected one of ${VIEWS.join(', ')}`, { href: path, label: 'Events' }))
    }
    const context: PageContext = { path, nonce, admin: options.usernameOf(user), view: view as ViewName, csrf: csrf.token(req.sessionID) }
    const result = await showView(context, params, options.source, (err) => logger.error(`the audit page could not read ${options.source.table}: ${err.message}`))
    if (result.access) options.record(req, { action: 'view', ...result.access })
    sendPage(res, result.status, result.body)
  }

  async function exportRows(req: AdminRequest, res: AdminResponse, params: URLSearchParams, sub: keyof typeof EXPORTS): Promise<void> {
    let filter
    try {
      filter = pageFilter(params)
    } catch (err) {
      if (err instanceof FilterError) return send(res, 400, 'text/plain; charset=utf-8', `${err.message}\n`)
      throw err
    }
    const format = EXPORTS[sub]
    const { limit: _unused, ...scope } = filter
    const stamp = new Date().toISOString().replace(/[:.]/g, '-')
    res.statusCode = 200
    res.setHeader('content-type', format.type)
    res.setHeader('content-disposition', `attachment; filename="audit-${stamp}${sub.slice('/export'.length)}"`)
    let rows = 0
    let closed = false
    /** Wakes a wait for `drain`: a reader that goes away mid-download never drains the buffer. */
    let wake = (): void => {}
    res.once('close', () => {
      closed = true
      wake()
    })
    try {
      res.write(format.header())
      for await (const row of eachAuditRow(options.source.client, options.source.table, scope)) {
        if (closed) break
        rows++
        if (!res.write(format.line(row))) {
          await new Promise<void>((resolve) => {
            wake = resolve
            res.once('drain', resolve)
          })
        }
      }
      res.end()
    } catch (err) {
      logger.error(`an export of ${options.source.table} failed after ${rows} rows: ${(err as Error).message}`)
      res.destroy(err as Error)
    } finally {
      // Recorded however it ended: an export cut short still let rows out.
      options.record(req, { action: 'export', filter: describeFilter(scope, { format: sub.slice('/export.'.length) }), rows })
    }
  }

  async function purge(req: AdminRequest, res: AdminResponse): Promise<void> {
    const form = await formOf(req)
    const origin = `${req.protocol ?? (req.socket?.encrypted ? 'https' : 'http')}://${String(req.headers.host ?? '')}`
    if (!csrf.verify(req.sessionID, form.get('_csrf')) || !sameOrigin(req.headers, origin)) {
      return sendPage(res, 403, plainPage('Not allowed', 'This form has expired or was not sent from the audit page; reload the page and try again.', { href: path, label: 'Events' }))
    }
    const text = form.get('older-than') ?? ''
    let ageMs: number
    try {
      ageMs = parseDuration('older-than', text)
      if (ageMs < 3_600_000) throw new FilterError(`older-than ${JSON.stringify(text)}: purge keeps at least the last hour (1h)`)
    } catch (err) {
      if (!(err instanceof FilterError)) throw err
      return sendPage(res, 400, plainPage('Bad request', err.message, { href: path, label: 'Events' }))
    }
    const before = new Date(Date.now() - ageMs)
    let result
    try {
      result = await purgeAudit(options.source.client, options.source.table, { before })
    } catch (err) {
      logger.error(`a purge of ${options.source.table} from the audit page failed: ${(err as Error).message}`)
      return sendPage(res, 503, plainPage('Purge failed', `The audit trail could not be purged: ${(err as Error).message}. The app's database account may not be allowed to delete; run "npx authtrail purge" with one that is.`, { href: path, label: 'Events' }))
    }
    options.record(req, { action: 'purge', filter: JSON.stringify({ olderThan: before.toISOString(), droppedPartitions: result.droppedPartitions }), rows: purgedRows(result) })
    const partitions = result.droppedPartitions.length > 0
      ? `: ${result.droppedRows} in ${result.droppedPartitions.length} dropped monthly partition${result.droppedPartitions.length === 1 ? '' : 's'} and ${result.deletedRows} deleted in batches`
      : ''
    sendPage(res, 200, plainPage('Purged', `Removed ${purgedRows(result)} records older than ${before.toISOString()}${partitions}. The purge is recorded in the audit trail.`, { href: path, label: 'Events' }))
  }

  return (request, response, next) => {
    const req = request as AdminRequest
    const url = req.originalUrl ?? req.url ?? '/'
    const mark = url.indexOf('?')
    const pathname = mark < 0 ? url : url.slice(0, mark)
    if (pathname !== path && !pathname.startsWith(`${path}/`)) return next()
    const res = response as AdminResponse
    handle(req, res, pathname, mark < 0 ? '' : url.slice(mark + 1)).catch((err: Error) => {
      logger.error(`the audit page failed on ${req.method} ${pathname}: ${err.stack ?? err.message}`)
      if (!res.headersSent) sendPage(res, 500, plainPage('Something went wrong', 'The audit page could not answer; the details are in the server log.'))
      else res.destroy(err)
    })
  }
}

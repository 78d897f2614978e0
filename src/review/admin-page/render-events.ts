import { AUDIT_EVENT_TYPES } from '../../types.js'
import { OUTCOMES } from '../audit-filter.js'
import type { AuditPage, AuditRow } from '../audit-query.js'
import { eventClient, xmlFields } from '../event-fields.js'
import { html } from './html.js'
import type { Html } from './html.js'
import { layout, link, timeOf } from './render-layout.js'
import type { PageContext } from './render-layout.js'

/** The parameters a page keeps when it links to another page of the same filter. */
function without(params: URLSearchParams, ...names: string[]): URLSearchParams {
  const kept = new URLSearchParams(params)
  for (const name of names) kept.delete(name)
  return kept
}

function field(label: string, name: string, params: URLSearchParams, placeholder: string, size = 16): Html {
  return html`<label>${label}<input name="${name}" value="${params.get(name) ?? ''}" placeholder="${placeholder}" size="${size}" autocomplete="off"></label>`
}

/** The filter form of a view, filled from its parameters. Always GET: filtering changes nothing. */
export function filterForm(context: PageContext, params: URLSearchParams, options: { types: boolean; extra?: Html }): Html {
  const chosen = new Set(params.getAll('type').flatMap((value) => value.split(',')).map((type) => type.trim().toUpperCase()))
  const types = options.types
    ? html`<fieldset class="types"><legend>Types</legend>${AUDIT_EVENT_TYPES.map((type) => html`<label><input type="checkbox" name="type" value="${type}"${chosen.has(type) ? html` checked` : ''}>${type}</label>`)}</fieldset>`
    : ''
  const outcome = params.get('outcome') ?? ''
  return html`<form class="filters" method="get" action="${context.path}">
${context.view === 'events' ? '' : html`<input type="hidden" name="view" value="${context.view}">`}
${field('User (exact)', 'user', params, 'alice')}
${field('IP or network', 'ip', params, '10.0.0.0/8', 18)}
<label>Outcome<select name="outcome"><option value="">any</option>${OUTCOMES.map((o) => html`<option value="${o}"${o === outcome ? html` selected` : ''}>${o}</option>`)}</select></label>
${field('Since', 'since', params, '24h or 2026-11-24T08:00Z', 20)}
${field('Until', 'until', params, 'ISO time or age', 20)}
${options.extra ?? ''}${types}
<button type="submit">Filter</button> <a href="${link(context.path, context.view === 'events' ? {} : { view: context.view })}">clear</a>
</form>`
}

/** One event's fields, read back from its XML, and the XML itself, as text. */
function details(row: AuditRow): Html {
  const fields = (xml: string, title: string) => {
    const pairs = xmlFields(xml)
    return pairs === undefined
      ? html`<p class="error">${title}: not well-formed XML, shown raw below</p>`
      : html`<p class="muted">${title}</p><dl>${pairs.map(([name, value]) => html`<dt>${name}</dt><dd>${value}</dd>`)}</dl>`
  }
  return html`<details class="event"><summary>details</summary>${fields(row.data, '<data>')}${fields(row.session_context, '<sessioncontext>')}
<p class="muted">raw XML</p><pre class="raw-data">${row.data}</pre><pre class="raw-context">${row.session_context}</pre></details>`
}

/** The rows of a page; the timeline shows the client of each event, the event list its session too. */
export function eventsTable(context: PageContext, rows: readonly AuditRow[], columns: 'events' | 'timeline'): Html {
  if (rows.length === 0) return html`<p class="muted" id="no-events">No events match.</p>`
  const head = columns === 'events'
    ? html`<tr><th>Time (UTC)</th><th>Type</th><th>User</th><th>IP</th><th>Browser</th><th>OS</th><th>Session</th><th></th></tr>`
    : html`<tr><th>Time (UTC)</th><th>Event</th><th>Browser</th><th>OS</th><th>IP</th><th>Session</th><th></th></tr>`
  const body = rows.map((row) => {
    const client = eventClient(row)
    const user = row.username === '' ? html`<span class="muted">–</span>` : html`<a href="${link(context.path, { view: 'timeline', user: row.username })}">${row.username}</a>`
    const ip = row.ip === '' ? html`<span class="muted">–</span>` : html`<a href="${link(context.path, { ip: row.ip })}">${row.ip}</a>`
    const session = html`<code title="${row.session_id}">${row.session_id.slice(0, 12)}</code>`
    return columns === 'events'
      ? html`<tr data-id="${row.id}"><td>${timeOf(row.time)}</td><td class="type-${row.type}">${row.type}</td><td class="wrap user">${user}</td><td class="wrap">${ip}</td><td class="wrap">${client.browser}</td><td class="wrap">${client.os}</td><td>${session}</td><td>${details(row)}</td></tr>`
      : html`<tr data-id="${row.id}"><td>${timeOf(row.time)}</td><td class="type-${row.type}">${row.type}</td><td class="wrap">${client.browser}</td><td class="wrap">${client.os}</td><td class="wrap">${ip}</td><td>${session}</td><td>${details(row)}</td></tr>`
  })
  return html`<table class="events"><thead>${head}</thead><tbody>${body}</tbody></table>`
}

/** Newest / newer / older links: keyset cursors, the rest of the filter kept. */
export function pager(context: PageContext, params: URLSearchParams, page: AuditPage): Html {
  const base = without(params, 'before', 'after')
  const at = (name: string, cursor: string) => {
    const next = new URLSearchParams(base)
    next.set(name, cursor)
    return link(context.path, next)
  }
  const onNewest = !params.has('before') && !params.has('after')
  return html`<nav class="pager" aria-label="pages">
${onNewest ? '' : html`<a href="${link(context.path, base)}" rel="first">« newest</a>`}
${page.newer ? html`<a href="${at('after', page.newer)}" rel="prev">‹ newer</a>` : ''}
${page.older ? html`<a href="${at('before', page.older)}" rel="next">older ›</a>` : html`<span class="muted">end of the trail</span>`}
</nav>`
}

/** Export links for the current filter, every page of it. */
function exports(context: PageContext, params: URLSearchParams): Html {
  const scope = without(params, 'before', 'after', 'limit', 'view')
  return html`<span>Export this filter: <a href="${link(`${context.path}/export.csv`, scope)}" download>CSV</a> · <a href="${link(`${context.path}/export.ndjson`, scope)}" download>NDJSON</a></span>`
}

function retention(context: PageContext): Html {
  return html`<section class="retention"><h2>Retention</h2>
<form method="post" action="${context.path}/purge" data-confirm="Remove every audit record older than this? This cannot be undone.">
<input type="hidden" name="_csrf" value="${context.csrf}">
<label>Remove records older than <input name="older-than" required placeholder="90d" size="6" pattern="[0-9]+[dh]"></label>
<button type="submit">Purge</button> <span class="muted">The purge is itself recorded (AUDIT_ACCESS).</span></form></section>`
}

/** What the event list and the timeline render: the request's parameters, and a page or an error. */
export interface EventsModel {
  readonly params: URLSearchParams
  readonly page: AuditPage | undefined
  readonly error: string | undefined
}

/** The event list (`view=events`) or a user's timeline (`view=timeline`). */
export function renderEvents(context: PageContext, model: EventsModel): string {
  const timeline = context.view === 'timeline'
  const user = model.params.get('user') ?? ''
  const intro = timeline
    ? html`<h2>${user === '' ? 'User timeline' : html`Timeline of <span class="user">${user}</span>`}</h2><p class="muted">Logins, failures, logouts, timeouts and other session ends, with the browser, OS and address of each.</p>`
    : html`<h2>Events</h2>`
  const error = model.error === undefined ? '' : html`<p class="error" role="alert">${model.error}</p>`
  const rows = model.page === undefined ? '' : html`<div class="toolbar">${exports(context, model.params)}<button type="button" data-toggle-details hidden>expand all</button></div>
${eventsTable(context, model.page.rows, timeline ? 'timeline' : 'events')}${pager(context, model.params, model.page)}`
  return layout(context, html`${intro}${filterForm(context, model.params, { types: !timeline })}${error}${rows}${timeline ? '' : retention(context)}`)
}

import { createClientInfoParser } from '../../describe/client-info.js'
import type { ActiveSession } from '../active-sessions.js'
import type { AuditStats, FailureBurst } from '../audit-stats.js'
import { html } from './html.js'
import type { Html } from './html.js'
import { filterForm } from './render-events.js'
import { layout, link, timeOf } from './render-layout.js'
import type { PageContext } from './render-layout.js'

/** What the failed-logins view renders. */
export interface FailuresModel {
  readonly params: URLSearchParams
  readonly stats: AuditStats | undefined
  readonly bursts: readonly FailureBurst[]
  readonly error: string | undefined
}

function errorOf(message: string | undefined): Html | string {
  return message === undefined ? '' : html`<p class="error" role="alert">${message}</p>`
}

function userLink(context: PageContext, username: string): Html {
  return html`<a href="${link(context.path, { view: 'timeline', user: username })}">${username === '' ? '(empty)' : username}</a>`
}

function ipLink(context: PageContext, ip: string): Html {
  return html`<a href="${link(context.path, { ip, outcome: 'failure' })}">${ip === '' ? '(empty)' : ip}</a>`
}

/** Counts per type, top failing users and addresses, and bursts of failures within a window. */
export function renderFailures(context: PageContext, model: FailuresModel): string {
  const { stats } = model
  const extra = html`<label>Window<input name="window" value="${model.params.get('window') ?? ''}" placeholder="5m" size="5"></label>
<label>At least<input name="min" value="${model.params.get('min') ?? ''}" placeholder="5" size="4"></label>`
  const tables = stats === undefined ? '' : html`
<p>${stats.total} events from ${timeOf(stats.since)} to ${stats.until === undefined ? 'now' : timeOf(stats.until)}.</p>
<div class="toolbar">
<table class="by-type"><thead><tr><th>Type</th><th>Count</th></tr></thead><tbody>${stats.byType.map((row) => html`<tr><td class="type-${row.type}">${row.type}</td><td>${row.count}</td></tr>`)}</tbody></table>
<table class="failing-users"><thead><tr><th>Failing user</th><th>Failures</th><th>Last</th></tr></thead><tbody>${stats.failingUsers.map((row) => html`<tr><td class="wrap">${userLink(context, row.username)}</td><td>${row.count}</td><td>${timeOf(row.last)}</td></tr>`)}</tbody></table>
<table class="failing-ips"><thead><tr><th>Failing address</th><th>Failures</th><th>Last</th></tr></thead><tbody>${stats.failingIps.map((row) => html`<tr><td class="wrap">${ipLink(context, row.ip)}</td><td>${row.count}</td><td>${timeOf(row.last)}</td></tr>`)}</tbody></table>
</div>
<h3>Bursts</h3>
${model.bursts.length === 0
  ? html`<p class="muted" id="no-bursts">No user or address reached the threshold in any window.</p>`
  : html`<table class="bursts"><thead><tr><th>By</th><th>Who</th><th>Window (UTC)</th><th>Failures</th><th>Last</th></tr></thead><tbody>${model.bursts.map((burst) => html`<tr><td>${burst.by}</td><td class="wrap">${burst.by === 'user' ? userLink(context, burst.value) : ipLink(context, burst.value)}</td><td>${timeOf(burst.from)} – ${timeOf(burst.to)}</td><td>${burst.count}</td><td>${timeOf(burst.last)}</td></tr>`)}</tbody></table>`}`
  return layout(context, html`<h2>Failed logins</h2><p class="muted">Failures per user and per address over the window (the last 24 hours unless Since says otherwise), and bursts: at least "At least" failures within one window.</p>
${filterForm(context, model.params, { types: false, extra })}${errorOf(model.error)}${tables}`)
}

/** What the active-sessions view renders. */
export interface SessionsModel {
  readonly params: URLSearchParams
  readonly sessions: readonly ActiveSession[] | undefined
  readonly error: string | undefined
}

/** Authenticated sessions from the session ledger: user, address, client, login and expiry. */
export function renderSessions(context: PageContext, model: SessionsModel, clientInfo = createClientInfoParser(64)): string {
  const user = model.params.get('user') ?? ''
  const form = html`<form class="filters" method="get" action="${context.path}"><input type="hidden" name="view" value="sessions">
<label>User (exact)<input name="user" value="${user}" placeholder="alice" autocomplete="off"></label><button type="submit">Filter</button></form>`
  const sessions = model.sessions
  const table = sessions === undefined ? '' : sessions.length === 0 ? html`<p class="muted">No authenticated session is being watched.</p>` : html`
<table class="sessions"><thead><tr><th>User</th><th>IP</th><th>Browser</th><th>OS</th><th>User-Agent</th><th>Login (UTC)</th><th>Idle expiry, as last known</th><th>Absolute expiry</th></tr></thead>
<tbody>${sessions.map((session) => {
    const client = clientInfo(session.userAgent)
    return html`<tr><td class="wrap">${userLink(context, session.username)}</td><td class="wrap">${session.ip}</td><td>${client.browser} ${client.browserVersion}</td><td>${client.os} ${client.osVersion}</td>
<td class="wrap">${session.userAgent}</td><td>${timeOf(session.loginTime)}</td><td>${timeOf(session.expiresAt)}</td><td>${timeOf(session.absoluteExpiresAt)}</td></tr>`
  })}</tbody></table>`
  return layout(context, html`<h2>Active sessions</h2><p class="muted">From the session ledger; an idle expiry in the past means the next sweep will confirm it with the session store.</p>${form}${errorOf(model.error)}${table}`)
}

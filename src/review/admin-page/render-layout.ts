import { html, renderHtml } from './html.js'
import type { Html } from './html.js'

/** The admin page's views. */
export const VIEWS = ['events', 'timeline', 'failures', 'sessions'] as const
/** One of {@link VIEWS}. */
export type ViewName = (typeof VIEWS)[number]

const VIEW_TITLES: Readonly<Record<ViewName, string>> = {
  events: 'Events',
  timeline: 'User timeline',
  failures: 'Failed logins',
  sessions: 'Active sessions',
}

/** What every rendered page knows: where it is mounted, this response's nonce, who is looking. */
export interface PageContext {
  readonly path: string
  readonly nonce: string
  readonly admin: string
  readonly view: ViewName
  /** The CSRF token of this session, for the forms that change something. */
  readonly csrf: string
}

/** A link inside the page: its mount path and parameters, encoded (no value can become a scheme). */
export function link(path: string, params: Readonly<Record<string, string | readonly string[] | undefined>> | URLSearchParams = {}): string {
  const query = params instanceof URLSearchParams ? new URLSearchParams(params) : new URLSearchParams()
  if (!(params instanceof URLSearchParams)) {
    for (const [name, value] of Object.entries(params)) {
      if (value === undefined || value === '') continue
      for (const item of typeof value === 'string' ? [value] : value) query.append(name, item)
    }
  }
  const text = query.toString()
  return text === '' ? path : `${path}?${text}`
}

/** An ISO time as a <time> element (the script adds the reader's local time on hover). */
export function timeOf(iso: string | undefined): Html {
  return iso === undefined ? html`<span class="muted">–</span>` : html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`
}

/** A whole page of the admin area, with its style and script allowed by `nonce`. */
export function layout(context: PageContext, body: Html): string {
  const nav = VIEWS.map((view) => html`<a href="${link(context.path, view === 'events' ? {} : { view })}"${view === context.view ? html` aria-current="page"` : ''}>${VIEW_TITLES[view]}</a>`)
  return '<!doctype html>' + renderHtml(html`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${VIEW_TITLES[context.view]} · audit trail</title>
<link rel="stylesheet" href="${context.path}/admin.css" nonce="${context.nonce}">
<script src="${context.path}/admin.js" nonce="${context.nonce}" defer></script></head>
<body><header><h1>Audit trail</h1><nav>${nav}</nav><span class="muted">signed in as ${context.admin}</span></header>
<main>${body}</main></body></html>`)
}

/** A page with a message and no data, for refusals and errors: no script, no style, nothing to leak. */
export function plainPage(title: string, message: string, back?: { href: string; label: string }): string {
  return '<!doctype html>' + renderHtml(html`<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body><h1>${title}</h1><p>${message}</p>${back ? html`<p><a href="${back.href}">${back.label}</a></p>` : ''}</body></html>`)
}

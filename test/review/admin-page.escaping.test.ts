import { describe, expect, it } from 'vitest'
import { escapeHtml, html, renderHtml } from '../../src/review/admin-page/html.js'
import { link } from '../../src/review/admin-page/render-layout.js'

const PAYLOADS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' onmouseover='alert(1)", 'javascript:alert(1)', '&lt;already&gt;', '</td></tr><tr><td>']

describe('the audit page\'s HTML', () => {
  it('escapes every interpolated value, in text and in attributes', () => {
    for (const payload of PAYLOADS) {
      const out = renderHtml(html`<td title="${payload}">${payload}</td>`)
      expect(out).not.toMatch(/<(script|img|tr)\b/)
      expect(out.slice(0, 11)).toBe('<td title="')
      expect(out.match(/"/g)).toHaveLength(2)
      expect(out).toBe(`<td title="${escapeHtml(payload)}">${escapeHtml(payload)}</td>`)
    }
  })

  it('returns text with nothing to escape as it is, and nests built fragments without escaping them twice', () => {
    const text = 'alice from 10.0.0.1'
    expect(escapeHtml(text)).toBe(text)
    expect(renderHtml(html`<p>${html`<b>${'a&b'}</b>`}${['x', html`<i>y</i>`]}${undefined}${false}${null}</p>`)).toBe('<p><b>a&amp;b</b>x<i>y</i></p>')
  })

  it('builds links under the mount path only, so no stored value can become a scheme', () => {
    expect(link('/admin/audit', { view: 'timeline', user: 'javascript:alert(1)' })).toBe('/admin/audit?view=timeline&user=javascript%3Aalert%281%29')
    expect(link('/admin/audit', { user: '' })).toBe('/admin/audit')
  })
})

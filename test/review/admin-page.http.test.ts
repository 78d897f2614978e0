import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { eventually } from '../helpers/eventually.js'
import { startRunningDemo } from '../helpers/running-demo.js'
import type { RunningDemo } from '../helpers/running-demo.js'

const signedIn = async (url: string, username: string, password: string) => {
  const browser = client(url)
  await browser.post('/login', { username, password })
  return browser
}

describe('the audit page over HTTP', () => {
  let running: RunningDemo
  beforeAll(async () => {
    running = await startRunningDemo()
    await client(running.url).post('/login', { username: 'alice', password: 'nope' })
    await signedIn(running.url, 'alice', 'wonderland')
    await running.demo.audit.flush()
  })
  afterAll(async () => {
    await running?.close()
  })

  it('refuses a visitor with 401 and a signed-in non-admin with 403, showing no data', async () => {
    const anonymous = await client(running.url).get('/admin/audit')
    expect(anonymous.status).toBe(401)
    const alice = await (await signedIn(running.url, 'alice', 'wonderland')).get('/admin/audit?user=alice')
    expect(alice.status).toBe(403)
    for (const page of [anonymous, alice]) {
      expect(page.text).not.toContain('LOGINERROR')
      expect(page.text).not.toMatch(/<table/)
    }
    const exported = await (await signedIn(running.url, 'alice', 'wonderland')).get('/admin/audit/export.csv')
    expect(exported.status).toBe(403)
  })

  it('serves the admin the events newest first, with a strict CSP and no cache', async () => {
    const admin = await signedIn(running.url, 'admin', 'change-me')
    await running.demo.audit.flush()
    const response = await admin.get('/admin/audit')
    expect(response.status).toBe(200)
    const csp = response.headers.get('content-security-policy')!
    for (const directive of ["default-src 'none'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'"]) expect(csp).toContain(directive)
    expect(csp).toMatch(/script-src 'nonce-[A-Za-z0-9+/=]{16,}'(;|$)/)
    expect(csp).not.toContain('unsafe-inline')
    expect(response.headers.get('cache-control')).toBe('no-store')
    expect(response.headers.get('x-content-type-options')).toBe('nosniff')
    const body = response.text
    const shown = [...body.matchAll(/<tr data-id="(\d+)"><td><time datetime="([^"]+)">/g)].map((m) => ({ id: Number(m[1]), time: m[2]! }))
    const stored = await running.demo.audit.query({ limit: 100 })
    expect(shown).toEqual(stored.map((row) => ({ id: row.id, time: row.time })))
    expect(stored.map((row) => row.type)).toContain('LOGINERROR')
    const nonce = /nonce-([^']+)'/.exec(csp)![1]!
    expect(body).toContain(`nonce="${nonce}"`)
    expect(body).not.toMatch(/<script>/)
  })

  it('names the parameter and value of a bad filter with a 400, never a stack', async () => {
    const admin = await signedIn(running.url, 'admin', 'change-me')
    for (const [query, named] of [['ip=10.0.0.0/99', 'ip &quot;10.0.0.0/99&quot;'], ['since=yesterday', 'since &quot;yesterday&quot;'], ['before=xyz', 'before &quot;xyz&quot;'], ['view=failures&window=0m', 'window &quot;0m&quot;']] as const) {
      const page = await admin.get(`/admin/audit?${query}`)
      expect(page.status).toBe(400)
      expect(page.text).toContain(named)
      expect(page.text).not.toMatch(/\n\s+at /)
    }
    expect((await admin.get('/admin/audit?view=nope')).status).toBe(400)
    expect((await admin.get('/admin/audit/nothing')).status).toBe(404)
    expect((await admin.post('/admin/audit', {})).status).toBe(405)
  })

  it('records every view and export as AUDIT_ACCESS by the admin, with the filter and row count', async () => {
    const admin = await signedIn(running.url, 'admin', 'change-me')
    await running.demo.audit.flush()
    const logins = (await running.demo.audit.query({ user: 'alice', types: ['LOGIN'] })).length
    await admin.get('/admin/audit?view=timeline&user=alice')
    const csv = await admin.get('/admin/audit/export.csv?user=alice&type=LOGIN')
    expect(csv.status).toBe(200)
    await eventually(async () => {
      const [exported, viewed] = await running.demo.audit.query({ types: ['AUDIT_ACCESS'], limit: 2 })
      expect(exported!.username).toBe('admin')
      expect(exported!.data).toContain('<Action>export</Action>')
      expect(exported!.data).toContain(`<Rows>${logins}</Rows>`)
      expect(exported!.data).toContain('<Channel>web</Channel>')
      expect(viewed!.data).toContain('<Action>view</Action>')
      expect(viewed!.data).toContain('&quot;view&quot;:&quot;timeline&quot;')
    })
  })

  it('exports NDJSON rows equal to the database rows of the filter', async () => {
    const admin = await signedIn(running.url, 'admin', 'change-me')
    await running.demo.audit.flush()
    const ndjson = await admin.get('/admin/audit/export.ndjson?user=alice')
    const rows = ndjson.text.trim().split('\n').map((line) => JSON.parse(line))
    expect(rows).toEqual(await running.demo.audit.query({ user: 'alice', limit: 1000 }))
  })

  it('purges only with the CSRF token of the session and from this origin, and records the purge', async () => {
    const admin = await signedIn(running.url, 'admin', 'change-me')
    const page = await admin.get('/admin/audit')
    const token = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!
    expect((await admin.post('/admin/audit/purge', { 'older-than': '30d' })).status).toBe(403)
    expect((await admin.post('/admin/audit/purge', { 'older-than': '30d', _csrf: 'forged' })).status).toBe(403)
    const other = await signedIn(running.url, 'admin', 'change-me')
    expect((await other.post('/admin/audit/purge', { 'older-than': '30d', _csrf: token })).status).toBe(403)
    expect((await admin.post('/admin/audit/purge', { 'older-than': '30d', _csrf: token }, { origin: 'https://evil.example' })).status).toBe(403)
    expect((await admin.post('/admin/audit/purge', { 'older-than': '10m', _csrf: token })).status).toBe(400)
    const done = await admin.post('/admin/audit/purge', { 'older-than': '30d', _csrf: token })
    expect(done.status).toBe(200)
    expect(done.text).toContain('Removed 0 records')
    await eventually(async () => expect((await running.demo.audit.query({ types: ['AUDIT_ACCESS'], limit: 1 }))[0]!.data).toContain('<Action>purge</Action>'))
  })
})

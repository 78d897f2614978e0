/**
 * The audit page end to end: Debian's Chromium, driven by playwright-core, against the demo app with
 * 5,000 seeded events in its embedded store, some of them hostile.
 */
import { mkdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Browser, Page } from 'playwright-core'
import { openEmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import { packageFile } from '../../src/package-files.js'
import type { AuditRow } from '../../src/review/audit-query.js'
import { CSV_COLUMNS } from '../../src/review/export-csv.js'
import type { AuditEvent, AuditEventType } from '../../src/types.js'
import { auditEvent, deliverEvents } from '../helpers/audit-event.js'
import { launchChromium } from '../helpers/chromium.js'
import { parseCsv } from '../helpers/csv.js'
import { startRunningDemo } from '../helpers/running-demo.js'
import type { RunningDemo } from '../helpers/running-demo.js'

const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-artifacts')
const SEEDED = 5000
const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi']
const TYPES: readonly AuditEventType[] = ['LOGIN', 'LOGINERROR', 'LOGOUT', 'LOGINERROR', 'SESSIONTIMEOUT']
const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0',
]

/** Each payload, if it ever ran, would set window.__xss or open a dialog. */
const SCRIPT_USER = '<script>window.__xss=1;alert(1)</script>'
const LINK_USER = 'javascript:window.__xss=1'
const HOSTILE_AGENT = '<img src=x onerror="window.__xss=1;alert(2)"><svg onload="window.__xss=1">'
const ATTRIBUTE_BREAK = '"><iframe src="javascript:alert(3)"></iframe>'
/** The newest logins and failures, the hostile ones among them. */
const RECENT = '/admin/audit?type=LOGIN&type=LOGINERROR&limit=30'

function seededEvents(): AuditEvent[] {
  const start = Date.now() - (SEEDED + 10) * 60_000
  const events = Array.from({ length: SEEDED - 3 }, (_, i) =>
    auditEvent(TYPES[i % TYPES.length]!, {
      username: USERS[i % USERS.length]!,
      time: start + i * 60_000,
      ip: `10.${(i >> 8) & 255}.${i & 255}.${i % 7}`,
      host: '',
      userAgent: AGENTS[i % AGENTS.length]!,
      sessionId: `S${String(i).padStart(5, '0')}`,
    }),
  )
  const late = start + SEEDED * 60_000
  events.push(
    auditEvent('LOGINERROR', { username: SCRIPT_USER, time: late, userAgent: HOSTILE_AGENT, ip: ATTRIBUTE_BREAK, message: SCRIPT_USER }),
    auditEvent('LOGIN', { username: LINK_USER, time: late + 1, userAgent: HOSTILE_AGENT, ip: '203.0.113.66' }),
    auditEvent('LOGINERROR', { username: '=HYPERLINK("http://evil.example","x")', time: late + 2, ip: '203.0.113.67' }),
  )
  return events
}

async function seed(project: { dir: string }): Promise<void> {
  const store = await openEmbeddedStore({ dir: path.join(project.dir, 'data'), schema: 'dbo', table: 'dbo.securitylog', installFile: packageFile('procedures/securitylogging.sql'), serve: false })
  try {
    const events = seededEvents()
    for (let i = 0; i < events.length; i += 1000) await deliverEvents({ client: store.client, proc: 'dbo.securitylogging' }, events.slice(i, i + 1000))
  } finally {
    await store.close()
  }
}

/** Signs in through the demo's form, as a person would. */
async function signIn(page: Page, base: string, username: string, password: string): Promise<void> {
  await page.goto(`${base}/`)
  await page.fill('input[name=username]', username)
  await page.fill('input[name=password]', password)
  await Promise.all([page.waitForURL(/\/(\?error=1)?$/), page.click('button[type=submit]')])
}

/** The ids and times of the rows a page shows. */
async function shownRows(page: Page): Promise<Array<{ id: number; time: string }>> {
  return page.$$eval('table.events tr[data-id]', (rows) => rows.map((row) => ({ id: Number(row.getAttribute('data-id')), time: row.querySelector('time')!.getAttribute('datetime')! })))
}

/** Follows "older" until the end of the trail; returns every row shown, in order. */
async function pageThrough(page: Page): Promise<Array<{ id: number; time: string }>> {
  const seen = await shownRows(page)
  for (;;) {
    const older = page.locator('a[rel=next]')
    if ((await older.count()) === 0) return seen
    const next = new URL((await older.getAttribute('href'))!, page.url()).href
    await Promise.all([page.waitForURL(next), older.click()])
    seen.push(...(await shownRows(page)))
  }
}

describe('the audit page in Chromium', () => {
  let running: RunningDemo
  let browser: Browser
  let admin: Page
  const dialogs: string[] = []

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    running = await startRunningDemo({}, {}, seed)
    browser = await launchChromium()
    // Real hostile requests through the capture path too: a script as the username, markup as the User-Agent.
    const hostile = await (await browser.newContext({ userAgent: HOSTILE_AGENT })).newPage()
    await signIn(hostile, running.url, SCRIPT_USER, 'whatever')
    await signIn(hostile, running.url, 'alice', 'wonderland')
    admin = await (await browser.newContext({ acceptDownloads: true })).newPage()
    admin.on('dialog', (dialog) => {
      dialogs.push(dialog.message())
      void dialog.dismiss()
    })
    await signIn(admin, running.url, 'admin', 'change-me')
    await running.demo.audit.flush()
  })
  afterAll(async () => {
    await browser?.close()
    await running?.close()
  })

  it('refuses a visitor and a signed-in non-admin, showing no event', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    const anonymous = await page.goto(`${running.url}/admin/audit`)
    expect(anonymous!.status()).toBe(401)
    await signIn(page, running.url, 'alice', 'wonderland')
    const alice = await page.goto(`${running.url}/admin/audit?user=alice`)
    expect(alice!.status()).toBe(403)
    expect(await page.locator('table').count()).toBe(0)
    expect(await page.textContent('body')).not.toContain('LOGIN')
    await context.close()
  })

  it('filters by user through the form and shows exactly that user\'s events, page after page', async () => {
    await admin.goto(`${running.url}/admin/audit`)
    await admin.fill('input[name=user]', 'bob')
    await Promise.all([admin.waitForURL(/user=bob/), admin.click('form.filters button[type=submit]')])
    const users = await admin.$$eval('table.events td.user', (cells) => cells.map((cell) => cell.textContent))
    expect(users.length).toBe(100)
    expect(new Set(users)).toEqual(new Set(['bob']))
    const shown = await pageThrough(admin)
    const stored = await running.demo.audit.query({ user: 'bob', limit: 10_000 })
    expect(shown).toEqual(stored.map((row) => ({ id: row.id, time: row.time })))
    expect(shown.length).toBe(seededEvents().filter((event) => event.username === 'bob').length)
  })

  it('pages through all 5,000 seeded events newest first, each exactly once', async () => {
    await admin.goto(`${running.url}/admin/audit?limit=500`)
    const shown = await pageThrough(admin)
    const first = shown[0]!
    // Rows stored after the first page (the admin's own AUDIT_ACCESS records) are newer: never on these pages.
    const stored = (await running.demo.audit.query({ limit: 10_000 })).filter((row) => row.time < first.time || (row.time === first.time && row.id <= first.id))
    expect(shown).toEqual(stored.map((row) => ({ id: row.id, time: row.time })))
    expect(new Set(shown.map((row) => row.id)).size).toBe(shown.length)
    expect(shown.length).toBeGreaterThanOrEqual(SEEDED)
  })

  it('exports the current filter as CSV whose rows match the database', async () => {
    await admin.goto(`${running.url}/admin/audit?user=carol&type=LOGINERROR&type=LOGIN`)
    const [download] = await Promise.all([admin.waitForEvent('download'), admin.click('a[href*="export.csv"]')])
    const file = path.join(ARTIFACTS, 'export-carol.csv')
    await download.saveAs(file)
    const [header, ...records] = parseCsv(readFileSync(file, 'utf8'))
    expect(header).toEqual([...CSV_COLUMNS])
    const stored = await running.demo.audit.query({ user: 'carol', types: ['LOGIN', 'LOGINERROR'], limit: 10_000 })
    expect(records.length).toBe(stored.length)
    expect(records.length).toBeGreaterThan(100)
    const unprefix = (cell: string) => (cell.startsWith("'") ? cell.slice(1) : cell)
    expect(records.map((record) => record.map(unprefix))).toEqual(stored.map((row: AuditRow) => CSV_COLUMNS.map((column) => String(row[column]))))
  })

  it('neutralises a formula in an exported cell', async () => {
    const response = await admin.request.get(`${running.url}/admin/audit/export.csv?ip=203.0.113.67`)
    const [, record] = parseCsv(await response.text())
    expect(record![3]).toBe('\'=HYPERLINK("http://evil.example","x")')
  })

  it('shows script payloads in usernames, User-Agents, addresses and XML as text, and runs none of them', async () => {
    const violations: string[] = []
    await admin.exposeFunction('reportViolation', (directive: string) => violations.push(directive))
    await admin.addInitScript(() => document.addEventListener('securitypolicyviolation', (event) => (window as any).reportViolation(event.violatedDirective)))
    for (const url of [RECENT, `/admin/audit?view=timeline&user=${encodeURIComponent(SCRIPT_USER)}`, `/admin/audit?view=timeline&user=${encodeURIComponent(LINK_USER)}`, '/admin/audit?view=failures&min=1', '/admin/audit?view=sessions']) {
      await admin.goto(`${running.url}${url}`)
      await admin.waitForLoadState('load')
      const toggle = admin.locator('[data-toggle-details]')
      if ((await toggle.count()) > 0) await toggle.click()
      expect(await admin.evaluate(() => (window as any).__xss)).toBeUndefined()
      expect(await admin.locator('img[src="x"], svg, iframe, a[href^="javascript:" i], [onerror], [onload]').count()).toBe(0)
    }
    await admin.goto(`${running.url}${RECENT}`)
    await admin.locator('[data-toggle-details]').click()
    const users = await admin.$$eval('td.user', (cells) => cells.map((cell) => cell.textContent))
    expect(users).toContain(SCRIPT_USER)
    expect(users).toContain(LINK_USER)
    expect(await admin.locator('td', { hasText: ATTRIBUTE_BREAK }).count()).toBeGreaterThan(0)
    const raw = await admin.$$eval('pre.raw-data', (blocks) => blocks.map((block) => block.textContent ?? ''))
    expect(raw.some((text) => text.includes('<UserName>javascript:window.__xss=1</UserName>'))).toBe(true)
    expect(raw.some((text) => text.includes('&lt;script&gt;window.__xss=1;alert(1)&lt;/script&gt;'))).toBe(true)
    // The parsed fields show the decoded value, as text.
    expect(await admin.locator('details.event dd', { hasText: SCRIPT_USER }).count()).toBeGreaterThan(0)
    await admin.goto(`${running.url}/admin/audit?view=sessions`)
    expect(await admin.locator('td', { hasText: HOSTILE_AGENT }).count()).toBeGreaterThan(0)
    expect(dialogs).toEqual([])
    // The page's own script ran (it set the hover titles); nothing else tried to.
    expect(await admin.locator('time[title]').count()).toBeGreaterThan(0)
    expect(violations).toEqual([])
  })

  it('saves a screenshot of the page', async () => {
    await admin.setViewportSize({ width: 1400, height: 900 })
    await admin.goto(`${running.url}/admin/audit?type=LOGIN&type=LOGINERROR&type=LOGOUT&limit=12`)
    await admin.locator('tr:has(td.type-LOGINERROR) details.event').first().evaluate((details) => ((details as HTMLDetailsElement).open = true))
    await admin.screenshot({ path: path.join(ARTIFACTS, 'admin-audit.png'), fullPage: false })
    expect(readFileSync(path.join(ARTIFACTS, 'admin-audit.png')).subarray(1, 4).toString()).toBe('PNG')
  })
})

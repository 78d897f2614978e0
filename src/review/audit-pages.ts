import type { SqlClient } from '../deliver/sql-client.js'
import type { AuditFilter, AuditRow } from './audit-query.js'
import { buildAuditQuery, toAuditRow } from './audit-query.js'

/**
 * Every row matching `filter`, in id order (the order they were stored), read in keyset pages of
 * `pageSize`: an export of millions of rows holds one page in memory, and each page is a fresh
 * `WHERE id > last` query, so no cursor stays open on the server. `filter.limit` caps the total.
 */
export async function* auditPages(client: SqlClient, table: string, filter: Omit<AuditFilter, 'limit'> & { readonly limit?: number }, pageSize = 5000): AsyncGenerator<AuditRow> {
  let remaining = filter.limit ?? Infinity
  let last = -1
  // The query of the CLI and the admin page, with its filters, taken up to its ORDER BY: then id order past the last row.
  const { text, params } = buildAuditQuery(client.dialect, table, { ...filter, limit: 1 })
  const pg = client.dialect === 'postgres'
  const head = text.slice(0, text.lastIndexOf(' ORDER BY '))
  const where = head.includes(' WHERE ') ? ' AND' : ' WHERE'
  while (remaining > 0) {
    const size = Math.min(pageSize, remaining)
    // PostgreSQL reads a bare `ORDER BY id` as the text column the query selects; the cast names the table's.
    const keyset = pg ? `${head}${where} id > $${params.length}::bigint ORDER BY id::bigint LIMIT $${params.length + 1}` : `${head}${where} id > ? ORDER BY id LIMIT ?`
    const page = await client.query<Record<string, unknown>>(keyset, [...params.slice(0, -1), last, size])
    for (const row of page) yield toAuditRow(row)
    remaining -= page.length
    if (page.length < size) return
    last = Number(page[page.length - 1]!.id)
  }
}

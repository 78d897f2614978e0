import type { AuditFilter } from './audit-filter.js'
import type { AuditRow } from './audit-query.js'

/** Reads the rows of `filter` stored after row `afterId`, oldest first, at most `filter.limit` of them. */
export type InsertedRows = (filter: AuditFilter, afterId: string) => Promise<AuditRow[]>

/**
 * Every row matching `filter`, in id order (the order they were stored), read in keyset pages of
 * `pageSize` through `read` (a review source: the database, or the app holding the embedded store): an
 * export of millions of rows holds one page in memory, and each page is a fresh `WHERE id > last`
 * query, so no cursor stays open on the server. `limit` caps the total.
 */
export async function* auditPages(read: InsertedRows, filter: AuditFilter, options: { readonly limit?: number; readonly pageSize?: number } = {}): AsyncGenerator<AuditRow> {
  const pageSize = options.pageSize ?? 5000
  let remaining = options.limit ?? Infinity
  let last = '0'
  while (remaining > 0) {
    const size = Math.min(pageSize, remaining)
    const page = await read({ ...filter, limit: size }, last)
    for (const row of page) yield row
    remaining -= page.length
    if (page.length < size) return
    last = String(page[page.length - 1]!.id)
  }
}

import type { AuditRow } from './audit-query.js'

/** One row as a line of NDJSON: the object `authtrail query --format json` prints. */
export function ndjsonLine(row: AuditRow): string {
  return JSON.stringify(row) + '\n'
}

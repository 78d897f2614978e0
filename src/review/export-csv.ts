import type { AuditRow } from './audit-query.js'

/** Columns of a CSV export, the fields of `authtrail query --format json` in the same order. */
export const CSV_COLUMNS = ['id', 'time', 'type', 'username', 'ip', 'session_id', 'data', 'session_context'] as const

/**
 * Cells a spreadsheet would run as a formula (=, +, -, @, tab, CR; OWASP's CSV injection list) get a
 * leading apostrophe, as does a cell that already starts with one, so that reading back is one rule:
 * drop a leading apostrophe. Everything else is exactly the stored text.
 */
const FORMULA_START = /^[=+\-@\t\r']/

/** One RFC 4180 cell: always quoted, quotes doubled; CR and LF inside a cell are kept. */
export function csvCell(value: string | number): string {
  const text = String(value)
  const safe = FORMULA_START.test(text) ? `'${text}` : text
  return `"${safe.replaceAll('"', '""')}"`
}

/** The header line, CRLF-terminated as RFC 4180 says. */
export function csvHeader(): string {
  return CSV_COLUMNS.join(',') + '\r\n'
}

/** One row as a CSV line. */
export function csvLine(row: AuditRow): string {
  return CSV_COLUMNS.map((column) => csvCell(row[column])).join(',') + '\r\n'
}

import { loadConfig } from '../config/load-config.js'
import { describeFilter, MAX_LIMIT } from '../review/audit-filter.js'
import type { AuditRow } from '../review/audit-query.js'
import { openReviewSource } from '../review/read-audit.js'
import { FILTER_HELP, filterFromFlags, parseFilterArgs, recordAccess } from './filter-flags.js'
import type { CommandIo } from './filter-flags.js'
import { UsageError } from './usage-error.js'

export { parseTime, parseTypes } from '../review/audit-filter.js'

/** `authtrail query --help`. */
export const QUERY_HELP = `Usage: authtrail query [options]

Prints audit records, newest first, one page at a time. The filters are the admin page's.

Options:
${FILTER_HELP}
  --limit N         at most N records (default 50, at most ${MAX_LIMIT})
  --before CURSOR   the page after this one: records older than the cursor a previous page printed
  --after CURSOR    records newer than the cursor (still printed newest first)
  --format FORMAT   table (default, for people) or json (NDJSON: one object per line)
  -h, --help        show this help

When more records match than --limit, the table ends with the --before cursor of the next page (with
--format json it goes to stderr). Each query is recorded in the audit trail as AUDIT_ACCESS, under the
operating-system user that ran it.

Exit status: 0 on success, 1 when the store cannot be read, 2 for a usage or configuration error.
`

/** Control characters (ANSI escapes in a hostile username) must not reach the admin's terminal. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\uFFFD')
}

/** Columns padded to their widest cell; the last one is not padded. */
export function formatTable(header: readonly string[], lines: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)))
  const format = (cells: readonly string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()
  return [format(header), ...lines.map(format)].join('\n') + '\n'
}

/** Audit rows as the table `query` prints. */
export function rowsTable(rows: readonly AuditRow[]): string {
  return formatTable(
    ['ID', 'TIME (UTC)', 'TYPE', 'USER', 'IP', 'SESSION'],
    rows.map((row) => [String(row.id), row.time, row.type, printable(row.username).slice(0, 40), printable(row.ip), row.session_id.slice(0, 12)]),
  )
}

/** `authtrail query`: returns what to print on stdout. */
export async function queryCommand(args: readonly string[], io: CommandIo): Promise<string> {
  const values = parseFilterArgs(args, {
    limit: { type: 'string', default: '50' },
    before: { type: 'string' },
    after: { type: 'string' },
    format: { type: 'string', default: 'table' },
  } as const)
  if (values.help) return QUERY_HELP
  if (values.format !== 'table' && values.format !== 'json') throw new UsageError(`--format ${JSON.stringify(values.format)}: expected table or json`)
  const filter = filterFromFlags(values, { defaultLimit: 50 })
  const source = await openReviewSource(loadConfig(values.config))
  try {
    const page = await source.page(filter)
    await recordAccess(source.record, { action: 'query', filter: describeFilter(filter), rows: page.rows.length }, io)
    const next = page.older === undefined ? '' : `more: --before ${page.older}\n`
    if (values.format === 'json') {
      if (next !== '') io.err.write(next)
      return page.rows.map((row) => JSON.stringify(row) + '\n').join('')
    }
    return page.rows.length === 0 ? 'no audit records match\n' : rowsTable(page.rows) + next
  } finally {
    await source.close()
  }
}

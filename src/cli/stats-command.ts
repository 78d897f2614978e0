import { loadConfig } from '../config/load-config.js'
import { describeFilter } from '../review/audit-filter.js'
import type { AuditStats } from '../review/audit-stats.js'
import { openReviewSource } from '../review/read-audit.js'
import { FILTER_HELP, filterFromFlags, parseFilterArgs, recordAccess } from './filter-flags.js'
import type { CommandIo } from './filter-flags.js'
import { formatTable, printable } from './query-command.js'
import { UsageError } from './usage-error.js'

/** `authtrail stats --help`. */
export const STATS_HELP = `Usage: authtrail stats [options]

Counts events per type, and the users and addresses with the most failed logins, over a window
(--since, the last 24 hours by default). The filters are the admin page's.

Options:
${FILTER_HELP}
  --top N           how many failing users and addresses to list (default 10, at most 1000)
  --format FORMAT   table (default) or json (one object)
  -h, --help        show this help

Exit status: 0 on success, 1 when the store cannot be read, 2 for a usage or configuration error.
`

function statsTable(stats: AuditStats): string {
  const window = `${stats.since} to ${stats.until ?? 'now'}`
  const parts = [`${stats.total} events from ${window}\n`]
  if (stats.byType.length > 0) parts.push('\n' + formatTable(['TYPE', 'COUNT'], stats.byType.map((row) => [row.type, String(row.count)])))
  parts.push(
    '\nTop failing users\n' +
      (stats.failingUsers.length === 0 ? 'none\n' : formatTable(['USER', 'FAILURES', 'LAST (UTC)'], stats.failingUsers.map((row) => [printable(row.username).slice(0, 60), String(row.count), row.last]))),
    '\nTop failing addresses\n' +
      (stats.failingIps.length === 0 ? 'none\n' : formatTable(['IP', 'FAILURES', 'LAST (UTC)'], stats.failingIps.map((row) => [printable(row.ip).slice(0, 60), String(row.count), row.last]))),
  )
  return parts.join('')
}

/** `authtrail stats`: returns what to print on stdout. */
export async function statsCommand(args: readonly string[], io: CommandIo): Promise<string> {
  const values = parseFilterArgs(args, {
    top: { type: 'string', default: '10' },
    format: { type: 'string', default: 'table' },
  } as const)
  if (values.help) return STATS_HELP
  if (values.format !== 'table' && values.format !== 'json') throw new UsageError(`--format ${JSON.stringify(values.format)}: expected table or json`)
  if (!/^\d{1,4}$/.test(values.top) || Number(values.top) < 1 || Number(values.top) > 1000) throw new UsageError(`--top ${JSON.stringify(values.top)}: expected a whole number from 1 to 1000`)
  const filter = filterFromFlags(values)
  const source = await openReviewSource(loadConfig(values.config))
  try {
    const stats = await source.stats(filter, Number(values.top))
    const { limit: _unused, ...scope } = filter
    await recordAccess(source.record, { action: 'stats', filter: describeFilter({ ...scope, since: stats.since }, { top: Number(values.top) }), rows: stats.total }, io)
    return values.format === 'json' ? JSON.stringify(stats) + '\n' : statsTable(stats)
  } finally {
    await source.close()
  }
}

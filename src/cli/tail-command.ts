import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig } from '../config/load-config.js'
import { describeFilter } from '../review/audit-filter.js'
import type { AuditRow } from '../review/audit-query.js'
import { openReviewSource } from '../review/read-audit.js'
import { FILTER_HELP, filterFromFlags, parseFilterArgs, recordAccess } from './filter-flags.js'
import type { CommandIo } from './filter-flags.js'
import { printable } from './query-command.js'
import { UsageError } from './usage-error.js'

/** `authtrail tail --help`. */
export const TAIL_HELP = `Usage: authtrail tail [options]

Prints the last records, then follows new ones as they are stored, until interrupted (Ctrl-C).
The filters are the admin page's.

Options:
${FILTER_HELP}
  --lines N         records to print first (default 10, at most 1000)
  --interval MS     how often to look for new records (default 1000, from 100)
  --format FORMAT   table (default) or json (NDJSON)
  -h, --help        show this help

New records are followed in the order they were stored (by id), so an event delivered late, such as
a replayed spool or a SESSIONTIMEOUT dated at the session's expiry, is printed when it arrives.
Starting is recorded in the audit trail as AUDIT_ACCESS.

Exit status: 0 when interrupted, 1 when the store cannot be read, 2 for a usage or configuration error.
`

/**
 * Two deliveries on two connections may commit out of id order: a row numbered below one already
 * printed can still appear. Rows are looked for above the highest id printed this long ago.
 */
const LATE_COMMIT_MS = 5000
const PAGE = 1000

function line(row: AuditRow): string {
  return `${row.time}  ${row.type.padEnd(14)}  ${printable(row.username).slice(0, 40).padEnd(20)}  ${printable(row.ip).padEnd(15)}  ${row.session_id.slice(0, 12)}`.trimEnd() + '\n'
}

/** `authtrail tail`: writes as records arrive; returns when `io.signal` aborts. */
export async function tailCommand(args: readonly string[], io: CommandIo): Promise<string> {
  const values = parseFilterArgs(args, {
    lines: { type: 'string', default: '10' },
    interval: { type: 'string', default: '1000' },
    format: { type: 'string', default: 'table' },
  } as const)
  if (values.help) return TAIL_HELP
  if (values.format !== 'table' && values.format !== 'json') throw new UsageError(`--format ${JSON.stringify(values.format)}: expected table or json`)
  if (!/^\d{1,4}$/.test(values.lines) || Number(values.lines) > 1000) throw new UsageError(`--lines ${JSON.stringify(values.lines)}: expected a whole number from 0 to 1000`)
  if (!/^\d{1,7}$/.test(values.interval) || Number(values.interval) < 100) throw new UsageError(`--interval ${JSON.stringify(values.interval)}: expected milliseconds, at least 100`)
  const filter = filterFromFlags({ ...values, limit: String(Math.max(1, Number(values.lines))) })
  const print = (row: AuditRow) => io.out.write(values.format === 'json' ? JSON.stringify(row) + '\n' : line(row))
  const source = await openReviewSource(loadConfig(values.config))
  try {
    const first = Number(values.lines) === 0 ? [] : (await source.page(filter)).rows
    const { limit: _unused, ...scope } = filter
    await recordAccess(source.record, { action: 'tail', filter: describeFilter(scope), rows: first.length }, io)
    for (const row of [...first].reverse()) print(row)
    // Where to start following: past what was printed and past the newest row of the whole table.
    const newest = (await source.page({ limit: 1 })).rows[0]
    let floor = Math.max(newest?.id ?? 0, ...first.map((row) => row.id))
    const printed = new Map<number, number>()
    while (!io.signal?.aborted) {
      const now = Date.now()
      let after = floor
      for (;;) {
        const rows = await source.inserted({ ...scope, limit: PAGE }, String(after))
        for (const row of rows) {
          if (printed.has(row.id)) continue
          printed.set(row.id, now)
          print(row)
        }
        if (rows.length < PAGE) break
        after = rows[rows.length - 1]!.id
      }
      for (const [id, at] of printed) {
        if (at > now - LATE_COMMIT_MS) continue
        floor = Math.max(floor, id)
      }
      for (const id of printed.keys()) if (id <= floor) printed.delete(id)
      await sleep(Number(values.interval), undefined, { signal: io.signal }).catch(() => {})
    }
    return ''
  } finally {
    await source.close()
  }
}

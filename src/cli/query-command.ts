import { parseArgs } from 'node:util'
import { loadConfig } from '../config/load-config.js'
import { AUDIT_EVENT_TYPES } from '../types.js'
import type { AuditEventType } from '../types.js'
import type { AuditFilter, AuditRow } from '../review/audit-query.js'
import { MAX_LIMIT } from '../review/audit-query.js'
import { readAuditRows } from '../review/read-audit.js'
import { UsageError } from './usage-error.js'

export const QUERY_HELP = `Usage: authtrail query [options]

Prints audit records, newest first.

Options:
  --config FILE     properties file (default: config/generalapp.properties)
  --type TYPE       only this event type: ${AUDIT_EVENT_TYPES.join(', ')}; repeat or comma-separate for several
  --user NAME       only events of this username
  --since TIME      only events at or after TIME: ISO 8601 (2026-11-23T10:00:00Z) or an age (90s, 15m, 2h, 7d)
  --until TIME      only events before TIME (same forms)
  --limit N         at most N records (default 50, at most ${MAX_LIMIT})
  --format FORMAT   table (default, for people) or json (NDJSON: one object per line)
  -h, --help        show this help

Exit status: 0 on success, 1 when the store cannot be read, 2 for a usage or configuration error.
`

/** Parses `--since`/`--until`: an ISO 8601 instant, or an age relative to `now`. */
export function parseTime(flag: string, value: string, now: number = Date.now()): string {
  const age = /^(\d+)(s|m|h|d)$/.exec(value)
  if (age) {
    const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 's' | 'm' | 'h' | 'd']
    return new Date(now - Number(age[1]) * unit).toISOString()
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const time = Date.parse(value)
    if (!Number.isNaN(time)) return new Date(time).toISOString()
  }
  throw new UsageError(`${flag} ${JSON.stringify(value)}: expected an ISO 8601 time (2026-11-23T10:00:00Z) or an age like 15m, 2h, 7d`)
}

/** Parses repeated or comma-separated `--type` values. */
export function parseTypes(values: readonly string[]): AuditEventType[] {
  const types = values.flatMap((value) => value.split(',')).map((type) => type.trim().toUpperCase()).filter(Boolean)
  for (const type of types) {
    if (!(AUDIT_EVENT_TYPES as readonly string[]).includes(type)) throw new UsageError(`--type ${JSON.stringify(type)}: expected one of ${AUDIT_EVENT_TYPES.join(', ')}`)
  }
  return types as AuditEventType[]
}

/** Control characters (ANSI escapes in a hostile username) must not reach the admin's terminal. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '\uFFFD')
}

function table(rows: readonly AuditRow[]): string {
  const header = ['ID', 'TIME (UTC)', 'TYPE', 'USER', 'IP', 'SESSION']
  const lines = rows.map((row) => [String(row.id), row.time, row.type, printable(row.username).slice(0, 40), printable(row.ip), row.session_id.slice(0, 12)])
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)))
  const format = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()
  return [format(header), ...lines.map(format)].join('\n') + '\n'
}

/** `authtrail query`: returns what to print on stdout. */
export async function queryCommand(args: readonly string[]): Promise<string> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: 'string', default: 'config/generalapp.properties' },
      type: { type: 'string', multiple: true, default: [] },
      user: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string', default: '50' },
      format: { type: 'string', default: 'table' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return QUERY_HELP
  if (values.format !== 'table' && values.format !== 'json') throw new UsageError(`--format ${JSON.stringify(values.format)}: expected table or json`)
  if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1 || Number(values.limit) > MAX_LIMIT) {
    throw new UsageError(`--limit ${JSON.stringify(values.limit)}: expected a whole number from 1 to ${MAX_LIMIT}`)
  }
  const filter: AuditFilter = {
    types: parseTypes(values.type),
    limit: Number(values.limit),
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(values.since !== undefined ? { since: parseTime('--since', values.since) } : {}),
    ...(values.until !== undefined ? { until: parseTime('--until', values.until) } : {}),
  }
  const config = loadConfig(values.config)
  const rows = await readAuditRows(config, filter)
  if (values.format === 'json') return rows.map((row) => JSON.stringify(row) + '\n').join('')
  return rows.length === 0 ? 'no audit records match\n' : table(rows)
}

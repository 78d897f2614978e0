/**
 * The filter flags of `query`, `stats` and `tail`: the names of the admin page's query parameters with
 * `--` in front, read by the same parser (src/review/audit-filter.ts).
 */
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { AUDIT_EVENT_TYPES } from '../types.js'
import { OUTCOME_TYPES, parseAuditFilter } from '../review/audit-filter.js'
import type { AuditFilter, FilterParseOptions } from '../review/audit-filter.js'
import { cliAccessEvent } from '../review/record-access.js'
import type { AuditAccess, AuditEvent } from '../types.js'

/** Where a command writes, and what stops a command that runs until told to (`tail`). */
export interface CommandIo {
  readonly out: NodeJS.WritableStream
  readonly err: NodeJS.WritableStream
  readonly signal?: AbortSignal
}

/** parseArgs options for the filter flags. */
export const FILTER_OPTIONS = {
  config: { type: 'string', default: 'config/generalapp.properties' },
  type: { type: 'string', multiple: true, default: [] as string[] },
  user: { type: 'string' },
  ip: { type: 'string' },
  outcome: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
} as const

type Options = NonNullable<ParseArgsConfig['options']>

/**
 * Parses a command's flags strictly (an unknown or misspelt flag is a usage error): the filter flags,
 * the command's own, and `--help`.
 */
export function parseFilterArgs<Own extends Options>(args: readonly string[], own: Own): ParsedFlags<Own> {
  const options = { ...FILTER_OPTIONS, ...own, help: HELP_OPTION }
  return parseArgs({ args: [...args], strict: true, allowPositionals: false, options }).values
}

const HELP_OPTION = { type: 'boolean', short: 'h' } as const
type ParsedFlags<Own extends Options> = ReturnType<typeof parseArgs<{ args: string[]; strict: true; allowPositionals: false; options: typeof FILTER_OPTIONS & Own & { help: typeof HELP_OPTION } }>>['values']

/** The help lines of the filter flags. */
export const FILTER_HELP = `  --config FILE     properties file (default: config/generalapp.properties)
  --type TYPE       only this event type: ${AUDIT_EVENT_TYPES.join(', ')}; repeat or comma-separate for several
  --user NAME       only events of this username (exact)
  --ip ADDRESS      only events from this address (exact), or from a network in CIDR form (10.0.0.0/8, 2001:db8::/32)
  --outcome O       success (${OUTCOME_TYPES.success.join(', ')}) or failure (${OUTCOME_TYPES.failure.join(', ')})
  --since TIME      only events at or after TIME: ISO 8601 (2026-11-23T10:00:00Z) or an age (90s, 15m, 2h, 7d)
  --until TIME      only events before TIME (same forms)`

/** Parses the filter flags of parseArgs' `values`. */
export function filterFromFlags(values: Readonly<Record<string, string | boolean | string[] | undefined>>, options: Omit<FilterParseOptions, 'label'> = {}): AuditFilter {
  const params: Record<string, string | string[] | undefined> = {}
  for (const [name, value] of Object.entries(values)) if (typeof value === 'string' || Array.isArray(value)) params[name] = value
  return parseAuditFilter(params, { ...options, label: (name) => `--${name}` })
}

/**
 * Records the read (or purge) in the audit trail (AUDIT_ACCESS, by the OS account). A database account that may
 * read but not call the procedure (authtrail_reader) must not lose the admin the answer: the failure is
 * said on stderr and the command still succeeds.
 */
export async function recordAccess(record: (event: AuditEvent) => Promise<void>, access: Omit<AuditAccess, 'channel'>, io: CommandIo): Promise<void> {
  try {
    await record(cliAccessEvent(access))
  } catch (err) {
    io.err.write(`authtrail: warning: this ${access.action} was not recorded in the audit trail: ${(err as Error).message.replace(/^authtrail: /, '')}\n`)
  }
}

import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { loadConfig } from '../config/load-config.js'
import { describeFilter } from '../review/audit-filter.js'
import { auditPages } from '../review/audit-pages.js'
import { toEcs } from '../review/export-ecs.js'
import { toEdx } from '../review/export-edx.js'
import { createPseudonymizer } from '../review/export-fields.js'
import type { Pseudonymizer } from '../review/export-fields.js'
import { openReviewSource } from '../review/read-audit.js'
import { FILTER_HELP, filterFromFlags, parseFilterArgs, recordAccess } from './filter-flags.js'
import type { CommandIo } from './filter-flags.js'
import { UsageError } from './usage-error.js'

/** The environment variable holding the pseudonymisation key. */
export const PSEUDONYM_KEY_ENV = 'AUTHTRAIL_PSEUDONYM_KEY'

export const EXPORT_HELP = `Usage: authtrail export --format ecs|edx [options]

Writes audit records as NDJSON (one JSON object per line), oldest first, for analysis:
  ecs  Elastic Common Schema (event.category authentication or session, event.outcome, user.name,
       source.ip, user_agent.*), ready for Filebeat or Logstash
  edx  the Open edX tracking-log shape (username, ip, event_type, event, agent, time, context, ...)
Rows are read in pages, so any number of them streams through.

Options:
  --format FORMAT  required: ecs or edx
  --pseudonymize   replace every username by HMAC-SHA256(key, username) in hex, the key taken from
                   $${PSEUDONYM_KEY_ENV} (at least 32 characters): the same user gets the same pseudonym
                   in every export made with that key; email and user id are left out
${FILTER_HELP}
  --limit N         at most N records (default: all)
  -h, --help        show this help

While an app holds the embedded store, the rows come through it. The export is recorded in the audit
trail as AUDIT_ACCESS. Exit status: 0 on success, 1 when the store cannot be read, 2 for a usage or
configuration error.
`

function pseudonymizer(env: Readonly<Record<string, string | undefined>>): Pseudonymizer {
  const key = env[PSEUDONYM_KEY_ENV]
  if (key === undefined || key === '') throw new UsageError(`--pseudonymize needs the key in the environment variable ${PSEUDONYM_KEY_ENV} (e.g. ${PSEUDONYM_KEY_ENV}=$(openssl rand -hex 32)); keep it to get the same pseudonyms in later exports`)
  if (key.length < 32) throw new UsageError(`--pseudonymize: the environment variable ${PSEUDONYM_KEY_ENV} holds ${key.length} characters; the key needs at least 32, or pseudonyms of common names can be guessed`)
  return createPseudonymizer(Buffer.from(key, 'utf8'))
}

/** `authtrail export`: streams NDJSON to `io.out`, waiting for it to drain; the export is itself recorded. */
export async function exportCommand(args: readonly string[], io: CommandIo): Promise<string> {
  const values = parseFilterArgs(args, {
    format: { type: 'string' },
    pseudonymize: { type: 'boolean', default: false },
    limit: { type: 'string' },
  } as const)
  if (values.help) return EXPORT_HELP
  if (values.format !== 'ecs' && values.format !== 'edx') throw new UsageError(`--format ${values.format === undefined ? 'is required' : JSON.stringify(values.format)}: expected ecs or edx`)
  if (values.limit !== undefined && (!/^\d+$/.test(values.limit) || Number(values.limit) < 1)) throw new UsageError(`--limit ${JSON.stringify(values.limit)}: expected a whole number of at least 1`)
  const pseudonymize = values.pseudonymize ? pseudonymizer(process.env) : undefined
  const format = values.format === 'ecs' ? toEcs : toEdx
  const { limit: _pageLimit, ...filter } = filterFromFlags({ ...values, limit: undefined })
  const { out } = io
  const source = await openReviewSource(loadConfig(values.config))
  let closed = false
  let rows = 0
  // A reader that goes away (`| head`) ends the export quietly.
  out.once('error', () => (closed = true))
  try {
    for await (const row of auditPages(source.inserted, filter, values.limit !== undefined ? { limit: Number(values.limit) } : {})) {
      if (closed) break
      rows++
      if (!out.write(JSON.stringify(format(row, pseudonymize)) + '\n')) await Promise.race([once(out, 'drain'), once(out, 'error')])
    }
  } finally {
    // Recorded however it ended: what left the audit trail is what counts, even an export cut short.
    await recordAccess(source.record, { action: 'export', filter: describeFilter(filter, { format: values.format, pseudonymized: values.pseudonymize ? 'yes' : 'no' }), rows }, io)
    await source.close()
  }
  return ''
}

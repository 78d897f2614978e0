import { parseArgs } from 'node:util'
import { loadConfig } from '../config/load-config.js'
import { auditTable } from '../deliver/open-database.js'
import { parseTime, parseTypes } from '../review/audit-filter.js'
import { purgeAudit, purgedRows } from '../review/purge.js'
import { withDatabase } from '../review/read-audit.js'
import { resolveChainSettings } from '../deliver/postgres/postgres-chain.js'
import { cliAccessEvent, recordThroughProcedure } from '../review/record-access.js'
import type { CommandIo } from './filter-flags.js'
import { UsageError } from './usage-error.js'

export const PURGE_HELP = `Usage: authtrail purge --older-than AGE [options]

Removes audit records older than AGE. On PostgreSQL whole monthly partitions are dropped; the rest is
deleted in small batches so that logins are never blocked. Run it with an account that may delete
(the authtrail_writer role may not).

Options:
  --older-than AGE  required: an age (90d, 12h) or an ISO 8601 time (2026-01-01T00:00:00Z)
  --type TYPE       only this event type (repeat or comma-separate); rows are then deleted in batches
  --config FILE     properties file (default: config/generalapp.properties)
  -h, --help        show this help

The purge is recorded in the audit trail as AUDIT_ACCESS, under the operating-system user that ran it.

Exit status: 0 on success, 1 when the database cannot be reached, 2 for a usage or configuration error.
`

/** `authtrail purge`: returns what to print on stdout. */
export async function purgeCommand(args: readonly string[], _io: CommandIo): Promise<string> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      'older-than': { type: 'string' },
      type: { type: 'string', multiple: true, default: [] },
      config: { type: 'string', default: 'config/generalapp.properties' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return PURGE_HELP
  if (values['older-than'] === undefined) throw new UsageError('--older-than is required (e.g. --older-than 90d): purge never removes everything by default')
  const before = new Date(parseTime('--older-than', values['older-than']))
  const types = parseTypes(values.type)
  const config = loadConfig(values.config)
  // A purge must be on record: with tamper evidence on, the keys its record is chained with are checked
  // before anything is removed (a read may go unrecorded with a warning; a purge may not).
  resolveChainSettings(config, process.env)
  const result = await withDatabase(config, process.env, async (client) => {
    const purged = await purgeAudit(client, await auditTable(client, config), { before, ...(types.length > 0 ? { types } : {}) })
    // Recorded after the purge, so the record itself is never purged with the rows it describes.
    const filter = JSON.stringify({ olderThan: before.toISOString(), ...(types.length > 0 ? { types } : {}), droppedPartitions: purged.droppedPartitions })
    try {
      await recordThroughProcedure(client, config, process.env, cliAccessEvent({ action: 'purge', filter, rows: purgedRows(purged) }))
    } catch (err) {
      throw new Error(`authtrail purge: removed ${purgedRows(purged)} rows${purged.droppedPartitions.length > 0 ? ` and ${purged.droppedPartitions.length} partitions` : ''}, but could not record the purge in the audit trail: ${(err as Error).message.replace(/^authtrail: /, '')}; record it by hand`)
    }
    return purged
  })
  const partitions = result.droppedPartitions.length > 0 ? `dropped ${result.droppedPartitions.length} partitions (${result.droppedPartitions.join(', ')}) holding ${result.droppedRows} rows and ` : ''
  return `${partitions}deleted ${result.deletedRows} rows older than ${before.toISOString()}${types.length > 0 ? ` of type ${types.join(', ')}` : ''}\n`
}

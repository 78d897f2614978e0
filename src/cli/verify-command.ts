import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { resolveChainKey } from '../config/chain-keys.js'
import { ConfigError, loadConfig } from '../config/load-config.js'
import { readCheckpointPublicKey } from '../deliver/checkpoint-signature.js'
import { auditTable } from '../deliver/open-database.js'
import { withDatabase } from '../review/read-audit.js'
import { verifyAudit } from '../review/verify-audit.js'
import type { VerifySummary } from '../review/verify-audit.js'
import type { Finding } from '../review/verify-chain.js'
import { parseTime } from './query-command.js'
import type { CommandIo } from './filter-flags.js'
import { EXIT, ExitError, UsageError } from './usage-error.js'

export const VERIFY_HELP = `Usage: authtrail verify --public-key FILE [options]

Walks every tamper-evident chain of the audit table (security.logging.chain = on) and reports each row
that was modified, deleted, inserted behind authtrail's back or put out of order, and each checkpoint
that fails. The chain's HMAC key is read from the environment variable that
security.logging.chain.key.env names (AUTHTRAIL_CHAIN_KEY by default). PostgreSQL and the embedded
store (stop the app first); see docs/tamper-evidence.md.

Options:
  --public-key FILE  required: the Ed25519 public key (PEM) that checkpoints are signed with
  --since TIME       only links recorded and rows of events at or after TIME (ISO 8601 or an age: 7d)
  --until TIME       only links recorded and rows of events before TIME
  --format FORMAT    text (default) or json (NDJSON: one finding per line, then a summary line)
  --config FILE      properties file (default: config/generalapp.properties)
  -h, --help         show this help

Exit status: 0 every chain verifies, 1 something was found, 2 a usage or configuration error,
3 the audit database cannot be read.
`

function line(finding: Finding): string {
  const where = [finding.chainId ? `chain ${finding.chainId}` : '', finding.seq !== undefined ? `seq ${finding.seq}` : '', finding.rowId !== undefined ? `row ${finding.rowId}` : '', finding.eventId ? `event ${finding.eventId}` : '']
  return `${finding.kind.toUpperCase().padEnd(12)} ${where.filter(Boolean).join(' ')}: ${finding.detail}\n`
}

function summaryText(s: VerifySummary): string {
  const tails = s.openTails.map((t) => `  chain ${t.chainId}: links ${t.from}-${t.to} after its last checkpoint (a process still running, or killed before it could close the chain)\n`).join('')
  const verdict = s.findings === 0 ? 'every chain verifies' : `${s.findings} problem${s.findings === 1 ? '' : 's'} found`
  return `${s.chains} chain${s.chains === 1 ? '' : 's'}, ${s.links} links, ${s.rows} rows: ${verdict}\n${tails ? `not yet covered by a checkpoint:\n${tails}` : ''}`
}

/** `authtrail verify`: streams findings to `io.out`; a break ends with exit status 1. */
export async function verifyCommand(args: readonly string[], { out }: CommandIo): Promise<string> {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      'public-key': { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      format: { type: 'string', default: 'text' },
      config: { type: 'string', default: 'config/generalapp.properties' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return VERIFY_HELP
  if (values.format !== 'text' && values.format !== 'json') throw new UsageError(`--format ${JSON.stringify(values.format)}: expected text or json`)
  if (values['public-key'] === undefined) throw new UsageError('--public-key FILE is required: checkpoints are checked against the Ed25519 public key they were signed with')
  let publicKeyText: string
  try {
    publicKeyText = readFileSync(values['public-key'], 'utf8')
  } catch (err) {
    throw new UsageError(`--public-key ${JSON.stringify(values['public-key'])}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  const publicKey = readCheckpointPublicKey(publicKeyText, `--public-key ${JSON.stringify(values['public-key'])}`)
  const config = loadConfig(values.config)
  if (config.db.kind === 'mariadb') throw new ConfigError(`authtrail: ${config.file}: key "security.logging.db" names MariaDB, where authtrail keeps no chain: verify reads PostgreSQL and the embedded store only`)
  const key = resolveChainKey(config, process.env)
  const json = values.format === 'json'
  // Read before the database is opened: a typo is a usage error (2), not an unreadable database (3).
  const range = {
    ...(values.since !== undefined ? { since: parseTime('--since', values.since) } : {}),
    ...(values.until !== undefined ? { until: parseTime('--until', values.until) } : {}),
  }
  let summary: VerifySummary
  try {
    summary = await withDatabase(config, process.env, async (client) =>
      verifyAudit(client, await auditTable(client, config), { key, publicKey, ...range }, (finding) => out.write(json ? JSON.stringify(finding) + '\n' : line(finding))),
    )
  } catch (err) {
    if (err instanceof ConfigError || err instanceof UsageError) throw err
    throw new ExitError(`authtrail verify: cannot read the audit database: ${(err as Error).message.replace(/^authtrail: /, '')}`, EXIT.unreadable)
  }
  const closing = json ? JSON.stringify({ summary }) + '\n' : summaryText(summary)
  if (summary.findings > 0) throw new ExitError(`authtrail verify: ${summary.findings} problems found`, EXIT.failure, closing)
  return closing
}

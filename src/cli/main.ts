/**
 * The `authtrail` command. Usage and configuration errors print one line and exit 2; a store that
 * cannot be read exits 1; never a stack trace for a mistake the user can fix.
 */
import { ConfigError } from '../config/load-config.js'
import { FilterError } from '../review/audit-filter.js'
import { exportCommand, EXPORT_HELP } from './export-command.js'
import type { CommandIo } from './filter-flags.js'
import { purgeCommand, PURGE_HELP } from './purge-command.js'
import { queryCommand, QUERY_HELP } from './query-command.js'
import { statsCommand, STATS_HELP } from './stats-command.js'
import { tailCommand, TAIL_HELP } from './tail-command.js'
import { verifyCommand, VERIFY_HELP } from './verify-command.js'
import { EXIT, ExitError, UsageError } from './usage-error.js'

const HELP = `Usage: authtrail <command> [options]

Commands:
  query    print audit records, newest first (filters: --type, --user, --ip, --outcome, --since, --until)
  stats    counts per type, top failing users and addresses over a window (--since 24h)
  tail     print the last records, then follow new ones as they are stored
  purge    remove records older than an age (--older-than 90d), by partition where possible
  export   write records as NDJSON for analysis: Elastic Common Schema or Open edX (--format ecs|edx)
  verify   check the tamper-evident chains: which rows were modified, deleted, inserted or reordered

Run "authtrail <command> --help" for a command's options.
`

/** A command returns what to print, or writes it to `io.out` as it goes (long outputs) and returns ''. */
const COMMANDS: Readonly<Record<string, { run: (args: readonly string[], io: CommandIo) => Promise<string>; help: string }>> = {
  query: { run: queryCommand, help: QUERY_HELP },
  stats: { run: statsCommand, help: STATS_HELP },
  tail: { run: tailCommand, help: TAIL_HELP },
  purge: { run: purgeCommand, help: PURGE_HELP },
  verify: { run: verifyCommand, help: VERIFY_HELP },
  export: { run: exportCommand, help: EXPORT_HELP },
}

/**
 * Runs the CLI; returns the exit code. `signal` stops a command that runs until interrupted (`tail`);
 * without one, SIGINT and SIGTERM do. Exported for tests.
 */
export async function main(argv: readonly string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr, signal?: AbortSignal): Promise<number> {
  const [name, ...args] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.write(HELP)
    return name === undefined ? EXIT.usage : EXIT.ok
  }
  const command = COMMANDS[name]
  if (!command) {
    err.write(`authtrail: unknown command ${JSON.stringify(name)}\n\n${HELP}`)
    return EXIT.usage
  }
  const interrupt = new AbortController()
  const stop = () => interrupt.abort()
  if (!signal) {
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  }
  try {
    out.write(await command.run(args, { out, err, signal: signal ?? interrupt.signal }))
    return EXIT.ok
  } catch (error) {
    if (error instanceof ExitError) {
      out.write(error.output)
      err.write(`${error.message}\n`)
      return error.code
    }
    const message = (error as Error).message ?? String(error)
    // parseArgs reports unknown or malformed flags with codes like ERR_PARSE_ARGS_UNKNOWN_OPTION.
    const usage = error instanceof UsageError || error instanceof FilterError || error instanceof ConfigError || String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS')
    err.write(`${message.startsWith('authtrail:') ? message : `authtrail ${name}: ${message}`}\n`)
    if (usage && !(error instanceof ConfigError)) err.write(`Run "authtrail ${name} --help" for the options.\n`)
    return usage ? EXIT.usage : EXIT.failure
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
}

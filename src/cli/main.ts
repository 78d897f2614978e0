/**
 * The `authtrail` command. Usage and configuration errors print one line and exit 2; a store that
 * cannot be read exits 1; never a stack trace for a mistake the user can fix.
 */
import { ConfigError } from '../config/load-config.js'
import { exportCommand, EXPORT_HELP } from './export-command.js'
import { purgeCommand, PURGE_HELP } from './purge-command.js'
import { queryCommand, QUERY_HELP } from './query-command.js'
import { verifyCommand, VERIFY_HELP } from './verify-command.js'
import { EXIT, ExitError, UsageError } from './usage-error.js'

const HELP = `Usage: authtrail <command> [options]

Commands:
  query    print audit records, newest first (filters: --type, --user, --since, --until, --limit)
  purge    remove records older than an age (--older-than 90d), by partition where possible
  export   write records as NDJSON for analysis: Elastic Common Schema or Open edX (--format ecs|edx)
  verify   check the tamper-evident chains: which rows were modified, deleted, inserted or reordered

Run "authtrail <command> --help" for a command's options.
`

/** A command returns what to print, or writes it to `out` as it goes (long outputs) and returns ''. */
const COMMANDS: Readonly<Record<string, { run: (args: readonly string[], out: NodeJS.WritableStream) => Promise<string>; help: string }>> = {
  query: { run: queryCommand, help: QUERY_HELP },
  purge: { run: purgeCommand, help: PURGE_HELP },
  verify: { run: verifyCommand, help: VERIFY_HELP },
  export: { run: exportCommand, help: EXPORT_HELP },
}

/** Runs the CLI; returns the exit code. Exported for tests. */
export async function main(argv: readonly string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
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
  try {
    out.write(await command.run(args, out))
    return EXIT.ok
  } catch (error) {
    if (error instanceof ExitError) {
      out.write(error.output)
      err.write(`${error.message}\n`)
      return error.code
    }
    const message = (error as Error).message ?? String(error)
    // parseArgs reports unknown or malformed flags with codes like ERR_PARSE_ARGS_UNKNOWN_OPTION.
    const usage = error instanceof UsageError || error instanceof ConfigError || String((error as { code?: string }).code).startsWith('ERR_PARSE_ARGS')
    err.write(`${message.startsWith('authtrail:') ? message : `authtrail ${name}: ${message}`}\n`)
    if (usage && !(error instanceof ConfigError)) err.write(`Run "authtrail ${name} --help" for the options.\n`)
    return usage ? EXIT.usage : EXIT.failure
  }
}

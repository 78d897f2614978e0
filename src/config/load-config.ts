import { readFileSync } from 'node:fs'
import path from 'node:path'
import { Properties } from 'properties-file/parser'
import { redactUrl } from '../deliver/sql-client.js'

/** How session ids are written to the audit trail. */
export const SESSION_ID_MODES = ['hmac', 'raw'] as const
export type SessionIdMode = (typeof SESSION_ID_MODES)[number]

/**
 * The `security.logging.*` keys authtrail reads from the properties file, with their defaults.
 * Any other `security.logging.*` key is an error: a misspelt key must not silently fall back to a default.
 */
export const CONFIG_KEYS = {
  /** Procedure or script receiving events. Absent or empty: nothing is logged. */
  proc: 'security.logging.proc',
  /** Database holding a stored procedure: `embedded` (PGlite), or a `postgres://` or `mariadb://`/`mysql://` URL. */
  db: 'security.logging.db',
  /** Name of the environment variable holding the database password, so it need not be in the file. */
  dbPasswordEnv: 'security.logging.db.password.env',
  /** Connections to the database. */
  dbPool: 'security.logging.db.pool',
  /** Most events per round trip. */
  batchSize: 'security.logging.batch.size',
  /** Longest an event waits for others to share its round trip, in ms. */
  batchFlushMs: 'security.logging.batch.flush.ms',
  /** `fail-open` (default): logins proceed whatever the audit trail's state; `strict`: a LOGIN that cannot be made durable is refused with 503. */
  mode: 'security.logging.mode',
  /** Tries for an event the procedure refuses before it is parked. */
  retryAttempts: 'security.logging.retry.attempts',
  /** First delay after a failure, in ms; it doubles (with jitter) up to retry.max.ms. */
  retryInitialMs: 'security.logging.retry.initial.ms',
  retryMaxMs: 'security.logging.retry.max.ms',
  /** Directory of the embedded store, relative to the working directory. */
  embeddedDir: 'security.logging.embedded.dir',
  /** Directory of the write-ahead spool (a file per process), relative to the working directory. */
  spoolDir: 'security.logging.spool.dir',
  /** Audit table read by the CLI; unqualified names take the procedure's schema. */
  table: 'security.logging.table',
  /** `hmac` (default) or `raw` session ids. */
  sessionId: 'security.logging.sessionid',
  /** Characters of User-Agent kept (longer values are truncated before parsing). */
  userAgentMaxLength: 'security.logging.useragent.maxlength',
  /** How often expired sessions are looked for, in ms: a timeout is recorded at most this long after it happens. */
  sessionSweepMs: 'security.logging.session.sweep.ms',
  /** Absolute session lifetime in seconds, whatever the activity (SESSIONEND when reached); 0 for none. */
  sessionAbsoluteSeconds: 'security.logging.session.absolute.seconds',
  /** express-session's cookie name (its `name` option), to notice requests whose session has expired. */
  sessionCookie: 'security.logging.session.cookie',
  /** `off` (default) or `on`: a hash chain with signed checkpoints over every stored event (docs/tamper-evidence.md). */
  chain: 'security.logging.chain',
  /** Name of the environment variable holding the chain's HMAC key (at least 32 characters). */
  chainKeyEnv: 'security.logging.chain.key.env',
  /** Name of the environment variable holding the Ed25519 private key that signs checkpoints (PEM). */
  chainSigningKeyEnv: 'security.logging.chain.signing.key.env',
  /** A checkpoint at least every this many links of a chain. */
  chainCheckpointEvents: 'security.logging.chain.checkpoint.events',
  /** A checkpoint at least this often (seconds) while a chain grows. */
  chainCheckpointSeconds: 'security.logging.chain.checkpoint.seconds',
  /** Failed logins of one username within the window that make a LOCKOUT; 0 turns the per-user count off. */
  bruteforceUserAttempts: 'security.logging.bruteforce.user.attempts',
  /** Failed logins from one address within the window that make a LOCKOUT; 0 turns the per-address count off. */
  bruteforceIpAttempts: 'security.logging.bruteforce.ip.attempts',
  /** The window failures are counted in, in seconds. */
  bruteforceWindowSeconds: 'security.logging.bruteforce.window.seconds',
  /** How long a lockout lasts, in seconds. */
  bruteforceBlockSeconds: 'security.logging.bruteforce.block.seconds',
  /** `false` (default): lockouts are recorded only; `true`: attempts are refused with 429 while locked out. */
  bruteforceBlock: 'security.logging.bruteforce.block',
  /** How often counts and lockouts are shared with other instances through the audit database, in ms. */
  bruteforceSyncMs: 'security.logging.bruteforce.sync.ms',
} as const

const DEFAULTS = {
  db: 'embedded',
  embeddedDir: 'data',
  spoolDir: 'spool',
  table: 'securitylog',
  sessionId: 'hmac',
  userAgentMaxLength: '512',
  // Measured with bench/postgres-delivery.ts: batches of 1000 over 2 connections reach about 0.8 of
  // COPY's rate on PostgreSQL; smaller batches pay a commit (a WAL flush) per 200 events.
  dbPool: '2',
  batchSize: '1000',
  // Events wait in the spool, durable, so a longer wait costs no login anything; each round trip costs the
  // database thread about 0.4 ms whatever its size (PGlite), and 100 ms rather than 20 cut its CPU per
  // login by a sixth in the login bench.
  batchFlushMs: '100',
  mode: 'fail-open',
  retryAttempts: '8',
  retryInitialMs: '100',
  retryMaxMs: '30000',
  sessionSweepMs: '5000',
  sessionAbsoluteSeconds: '0',
  sessionCookie: 'connect.sid',
  chain: 'off',
  chainKeyEnv: 'AUTHTRAIL_CHAIN_KEY',
  chainSigningKeyEnv: 'AUTHTRAIL_CHECKPOINT_KEY',
  chainCheckpointEvents: '1000',
  chainCheckpointSeconds: '60',
  bruteforceUserAttempts: '5',
  bruteforceIpAttempts: '20',
  bruteforceWindowSeconds: '900',
  bruteforceBlockSeconds: '900',
  bruteforceBlock: 'false',
  bruteforceSyncMs: '1000',
} as const

/** Where a stored procedure lives. */
export type DatabaseConfig =
  | { readonly kind: 'embedded' }
  | {
      readonly kind: 'postgres' | 'mariadb'
      /** The URL as written (it may hold a password: never print it, see redactUrl). */
      readonly url: string
      /** Environment variable whose value is the password, if the file names one. */
      readonly passwordEnv: string | undefined
      readonly pool: number
    }

/** A SQL name, optionally schema-qualified, as Showcase users write it (`dbo.securitylogging`). */
const SQL_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}(\.[A-Za-z_][A-Za-z0-9_]{0,62})?$/
/** The name of an environment variable. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
/** A key whose value may be a secret, so that an error about it does not print the value. */
const SECRET_KEY = /pass|pwd|secret/i
/** A script module in `procedures/`, by its extension. */
const SCRIPT_EXTENSION = /\.(js|mjs|ts)$/

/** Settings read from one properties file, validated and resolved to absolute paths. */
export interface AuthtrailConfig {
  /** Absolute path of the properties file, for error messages. */
  readonly file: string
  /** `security.logging.proc`; empty means logging is off. */
  readonly proc: string
  readonly procKind: 'off' | 'script' | 'stored-procedure'
  readonly db: DatabaseConfig
  /** Most events per delivery. */
  readonly batchSize: number
  /** Longest an event waits for a batch to fill, in ms. */
  readonly batchFlushMs: number
  /** Session expiry: sweep interval, absolute lifetime (0 for none), express-session's cookie name. */
  readonly session: { readonly sweepMs: number; readonly absoluteMs: number; readonly cookie: string }
  readonly retry: { readonly maxAttempts: number; readonly initialDelayMs: number; readonly maxDelayMs: number }
  readonly mode: 'fail-open' | 'strict'
  /** Absolute directory of the embedded store. */
  readonly embeddedDir: string
  /** Absolute directory of the write-ahead spool. */
  readonly spoolDir: string
  /** Schema of a stored procedure's name (`dbo` of `dbo.securitylogging`), else `public`. */
  readonly schema: string
  /** Schema-qualified audit table name (`public.securitylog`). */
  readonly table: string
  readonly sessionIdMode: SessionIdMode
  readonly userAgentMaxLength: number
  /** Tamper evidence: whether it is on, where its keys come from, how often chains are checkpointed. */
  readonly chain: {
    readonly enabled: boolean
    readonly keyEnv: string
    readonly signingKeyEnv: string
    readonly checkpointEvents: number
    readonly checkpointMs: number
  }
  readonly bruteforce: BruteForceSettings
  /** Every property of the file, for script procedures that read their own keys. */
  readonly properties: Readonly<Record<string, string>>
}

/** Brute-force detection, from the security.logging.bruteforce.* keys. */
export interface BruteForceSettings {
  /** Failures of one username within the window that make a LOCKOUT; 0 for none. @defaultValue 5 */
  readonly userAttempts: number
  /** Failures from one address within the window that make a LOCKOUT; 0 for none. @defaultValue 20 */
  readonly ipAttempts: number
  /** The counting window, in ms. @defaultValue 900000 */
  readonly windowMs: number
  /** How long a lockout lasts, in ms. @defaultValue 900000 */
  readonly blockMs: number
  /** Refuse attempts while locked out, rather than only record the lockout. @defaultValue false */
  readonly block: boolean
  /** How often counts and lockouts are exchanged with the other instances, in ms. @defaultValue 1000 */
  readonly syncMs: number
}

/** A configuration error: names the file, the key and the value, never a stack trace to a browser. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/**
 * Reads and validates authtrail's keys from a Java properties file (continuations, `:`/whitespace
 * separators, `\uXXXX` escapes and comments follow `java.util.Properties`).
 *
 * @param file - path of the properties file, relative to `cwd`
 * @param cwd - directory that relative paths in the file are resolved against
 * @throws {ConfigError} naming the file, key and value of the first problem
 * @example
 * const config = loadConfig('config/generalapp.properties')
 */
export function loadConfig(file: string, cwd: string = process.cwd()): AuthtrailConfig {
  const absolute = path.resolve(cwd, file)
  let text: Buffer
  try {
    text = readFileSync(absolute)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new ConfigError(`authtrail: cannot read the properties file ${absolute} (${code ?? String(err)}); pass the right path as the "config" option or --config`)
  }
  return parseConfig(readProperties(text, absolute), absolute, cwd)
}

/**
 * The properties of a file's text. java.util.Properties keeps the last of a repeated key, so a
 * `security.logging.mode = strict` above a forgotten `= fail-open` would silently turn strict mode off:
 * a repeated security.logging.* key is refused instead (other keys keep Java's behaviour).
 */
function readProperties(text: Buffer, file: string): Record<string, string> {
  let properties: Properties
  try {
    properties = new Properties(text)
  } catch (err) {
    // The parser's message names neither the file nor the line: "malformed escaped unicode characters '\u00ct'".
    const escape = /'(.*)'$/s.exec((err as Error).message)?.[1]
    const where = malformedEscape(text.toString('utf8'))
    if (escape === undefined || where === undefined) throw new ConfigError(`authtrail: ${file}: cannot be read as a properties file (${(err as Error).message})`)
    const shown = where.key === CONFIG_KEYS.db || SECRET_KEY.test(where.key ?? '') ? 'in its value' : JSON.stringify(escape)
    throw new ConfigError(
      `authtrail: ${file}: line ${where.line}${where.key ? ` (key "${where.key}")` : ''}: malformed escape ${shown}: a \\u must be followed by four hexadecimal digits (write \\\\u for a backslash and a u)`,
    )
  }
  for (const { key, nodes } of properties.getKeyCollisions()) {
    if (!key.startsWith('security.logging.')) continue
    const lines = nodes.map((node) => node.startingLineNumber)
    throw new ConfigError(`authtrail: ${file}: key "${key}" is set on lines ${lines.slice(0, -1).join(', ')} and ${lines.at(-1)}; only the last would count, so keep the one you mean and remove the others`)
  }
  return properties.toObject()
}

/** The line, and the key it belongs to, of the first `\u` not followed by four hexadecimal digits. */
function malformedEscape(text: string): { line: number; key: string | undefined } | undefined {
  let continued = false
  let key: string | undefined
  for (const [index, line] of text.split(/\r\n|\r|\n/).entries()) {
    const start = line.trimStart()
    const comment = !continued && (start.startsWith('#') || start.startsWith('!'))
    if (comment) continue
    if (!continued) key = /^[^=:\s\\]+(?=[=:\s]|$)/.exec(start)?.[0]
    if (/(^|[^\\])(\\\\)*\\u(?![0-9A-Fa-f]{4})/.test(line)) return { line: index + 1, key }
    continued = /(^|[^\\])(\\\\)*\\$/.test(line)
  }
  return undefined
}

/** Validates already-parsed properties; `file` is only used in messages. */
export function parseConfig(properties: Record<string, string>, file: string, cwd: string = process.cwd()): AuthtrailConfig {
  const fail = (key: string, value: string, why: string): never => {
    throw new ConfigError(`authtrail: ${file}: key "${key}" = ${JSON.stringify(value)}: ${why}`)
  }
  const known = new Set<string>(Object.values(CONFIG_KEYS))
  for (const key of Object.keys(properties)) {
    if (key.startsWith('security.logging.') && !known.has(key)) {
      // security.logging.db.password = ... is a likely mistake, and its value must not be printed.
      fail(key, SECRET_KEY.test(key) ? '***' : (properties[key] ?? ''), `unknown key; authtrail reads ${[...known].join(', ')}`)
    }
  }
  // A blank left by templating (`security.logging.mode = ${AUDIT_MODE}` with the variable unset) must not
  // silently become the default, which would turn strict mode or chaining off; only an empty proc means
  // something: logging off.
  for (const [name, key] of Object.entries(CONFIG_KEYS)) {
    if (key === CONFIG_KEYS.proc || properties[key]?.trim() !== '') continue
    const fallback = name in DEFAULTS ? `the default, ${JSON.stringify(DEFAULTS[name as keyof typeof DEFAULTS])}` : 'none'
    fail(key, properties[key]!, `the value is empty; set one, or remove the line to have ${fallback}`)
  }
  const get = (key: keyof typeof CONFIG_KEYS, fallback: string): string => properties[CONFIG_KEYS[key]]?.trim() ?? fallback

  const proc = get('proc', '')
  let procKind: AuthtrailConfig['procKind'] = 'off'
  if (proc !== '') {
    if (SCRIPT_EXTENSION.test(proc)) {
      if (path.isAbsolute(proc) || proc.split(/[\\/]/).includes('..')) fail(CONFIG_KEYS.proc, proc, 'a script must be a relative path inside procedures/ (no "..")')
      procKind = 'script'
    } else if (SQL_NAME.test(proc)) {
      procKind = 'stored-procedure'
    } else {
      fail(CONFIG_KEYS.proc, proc, 'expected a procedure name like "dbo.securitylogging" or a script like "my-logger.mjs" in procedures/')
    }
  }

  const integer = (key: keyof typeof CONFIG_KEYS & keyof typeof DEFAULTS, min: number, max: number, what: string): number => {
    const text = get(key, DEFAULTS[key])
    const value = Number(text)
    if (!/^\d+$/.test(text) || value < min || value > max) fail(CONFIG_KEYS[key], text, `expected ${what}: a whole number from ${min} to ${max}`)
    return value
  }
  // Checked whatever the database, so that a mistake shows now rather than on the day the
  // embedded store is swapped for a server.
  const passwordEnv = properties[CONFIG_KEYS.dbPasswordEnv]?.trim()
  // Not echoed: what is there instead of a variable's name may be the password itself.
  if (passwordEnv !== undefined && !ENV_NAME.test(passwordEnv)) fail(CONFIG_KEYS.dbPasswordEnv, '***', 'expected the name of an environment variable, like AUTHTRAIL_DB_PASSWORD (the value is not shown: it may be a password)')
  const pool = integer('dbPool', 1, 100, 'connections')
  const dbText = get('db', DEFAULTS.db)
  let db: DatabaseConfig = { kind: 'embedded' }
  if (dbText !== 'embedded') {
    const kind = /^postgres(ql)?:\/\//.test(dbText) ? 'postgres' : /^(mariadb|mysql):\/\//.test(dbText) ? 'mariadb' : undefined
    let parsed: URL | undefined
    try {
      parsed = new URL(dbText)
    } catch {
      parsed = undefined
    }
    const expected = 'expected "embedded", a postgres://user@host:5432/database URL or a mariadb://user@host:3306/database URL'
    if (!kind || !parsed) fail(CONFIG_KEYS.db, redactUrl(dbText), expected)
    const { hostname, pathname, searchParams } = parsed!
    // pg reads a socket directory from ?host= (postgres:///audit?host=/run/postgresql); mysql2 does not.
    if (hostname === '' && !(kind === 'postgres' && searchParams.get('host'))) fail(CONFIG_KEYS.db, redactUrl(dbText), `names no host; ${expected}`)
    // An unescaped "/" in the password ends the host early and moves the rest into the database name.
    if (pathname.includes('@')) fail(CONFIG_KEYS.db, redactUrl(dbText), 'the database name holds "@": write a "/", "?", "#" or "@" in the user or password as %2F, %3F, %23 or %40')
    if (pathname.replace(/^\//, '') === '') fail(CONFIG_KEYS.db, redactUrl(dbText), `names no database; ${expected}`)
    db = { kind: kind!, url: dbText, passwordEnv, pool }
  }

  const mode = get('mode', DEFAULTS.mode)
  if (mode !== 'fail-open' && mode !== 'strict') fail(CONFIG_KEYS.mode, mode, 'expected "fail-open" (logins proceed while the audit trail is down) or "strict" (a login that cannot be recorded durably is refused with 503)')
  const sessionIdMode = get('sessionId', DEFAULTS.sessionId)
  if (!(SESSION_ID_MODES as readonly string[]).includes(sessionIdMode)) {
    fail(CONFIG_KEYS.sessionId, sessionIdMode, 'expected "hmac" (keyed hash, the default) or "raw" (Showcase compatibility)')
  }

  const maxLengthText = get('userAgentMaxLength', DEFAULTS.userAgentMaxLength)
  const userAgentMaxLength = Number(maxLengthText)
  if (!/^\d+$/.test(maxLengthText) || userAgentMaxLength < 64 || userAgentMaxLength > 65536) {
    fail(CONFIG_KEYS.userAgentMaxLength, maxLengthText, 'expected a whole number of characters from 64 to 65536')
  }

  const cookieName = get('sessionCookie', DEFAULTS.sessionCookie)
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName)) fail(CONFIG_KEYS.sessionCookie, cookieName, 'expected a cookie name (express-session\'s `name` option, "connect.sid" by default)')

  const chainText = get('chain', DEFAULTS.chain)
  if (chainText !== 'on' && chainText !== 'off') fail(CONFIG_KEYS.chain, chainText, 'expected "off" (the default) or "on" (hash-chained rows with signed checkpoints)')
  const envName = (key: 'chainKeyEnv' | 'chainSigningKeyEnv'): string => {
    const name = get(key, DEFAULTS[key])
    if (!ENV_NAME.test(name)) fail(CONFIG_KEYS[key], name, `expected the name of an environment variable, like ${DEFAULTS[key]}`)
    return name
  }
  const chain = {
    enabled: chainText === 'on',
    keyEnv: envName('chainKeyEnv'),
    signingKeyEnv: envName('chainSigningKeyEnv'),
    checkpointEvents: integer('chainCheckpointEvents', 1, 1_000_000, 'links'),
    checkpointMs: integer('chainCheckpointSeconds', 1, 86_400, 'seconds') * 1000,
  }
  if (chain.enabled && procKind !== 'stored-procedure') {
    fail(CONFIG_KEYS.chain, chainText, `chaining needs a stored procedure in PostgreSQL or the embedded store; ${CONFIG_KEYS.proc} = ${JSON.stringify(proc)} ${procKind === 'off' ? 'is empty' : 'is a script'}`)
  }
  if (chain.enabled && db.kind === 'mariadb') {
    fail(CONFIG_KEYS.chain, chainText, 'tamper evidence is implemented for PostgreSQL and the embedded store only, not MariaDB (docs/tamper-evidence.md); set it to off, or log to PostgreSQL')
  }

  const blockText = get('bruteforceBlock', DEFAULTS.bruteforceBlock)
  if (blockText !== 'true' && blockText !== 'false') fail(CONFIG_KEYS.bruteforceBlock, blockText, 'expected "false" (record lockouts only, the default) or "true" (refuse attempts with 429 while locked out)')
  const bruteforce = {
    userAttempts: integer('bruteforceUserAttempts', 0, 1_000_000, 'failed logins (0 turns it off)'),
    ipAttempts: integer('bruteforceIpAttempts', 0, 1_000_000, 'failed logins (0 turns it off)'),
    windowMs: integer('bruteforceWindowSeconds', 10, 31_536_000, 'seconds') * 1000,
    blockMs: integer('bruteforceBlockSeconds', 1, 31_536_000, 'seconds') * 1000,
    block: blockText === 'true',
    syncMs: integer('bruteforceSyncMs', 10, 600_000, 'milliseconds'),
  }

  // A script name like "audit.mjs" has no schema, though it looks like one.
  const schema = (procKind === 'stored-procedure' ? procSchema(proc) : undefined) ?? 'public'
  let table = get('table', DEFAULTS.table)
  if (!SQL_NAME.test(table)) fail(CONFIG_KEYS.table, table, 'expected a table name like "securitylog" or "dbo.securitylog"')
  if (!table.includes('.')) table = `${schema}.${table}`

  const retry = {
    maxAttempts: integer('retryAttempts', 1, 1000, 'tries'),
    initialDelayMs: integer('retryInitialMs', 1, 600_000, 'milliseconds'),
    maxDelayMs: integer('retryMaxMs', 1, 3_600_000, 'milliseconds'),
  }
  // The delay would start above its cap and never double: the operator swapped or mistyped one of them.
  if (retry.initialDelayMs > retry.maxDelayMs) {
    fail(CONFIG_KEYS.retryInitialMs, String(retry.initialDelayMs), `the first delay exceeds ${CONFIG_KEYS.retryMaxMs} = ${retry.maxDelayMs}; make it at most that, or raise the maximum`)
  }

  return Object.freeze({
    file,
    proc,
    procKind,
    db,
    batchSize: integer('batchSize', 1, 10_000, 'events per batch'),
    batchFlushMs: integer('batchFlushMs', 0, 60_000, 'milliseconds'),
    retry,
    embeddedDir: path.resolve(cwd, get('embeddedDir', DEFAULTS.embeddedDir)),
    spoolDir: path.resolve(cwd, get('spoolDir', DEFAULTS.spoolDir)),
    schema,
    table,
    sessionIdMode: sessionIdMode as SessionIdMode,
    mode: mode as AuthtrailConfig['mode'],
    userAgentMaxLength,
    session: {
      sweepMs: integer('sessionSweepMs', 100, 3_600_000, 'milliseconds'),
      absoluteMs: integer('sessionAbsoluteSeconds', 0, 31_536_000, 'seconds') * 1000,
      cookie: cookieName,
    },
    chain: Object.freeze(chain),
    bruteforce: Object.freeze(bruteforce),
    properties: Object.freeze({ ...properties }),
  })
}

/** The schema of a qualified procedure name (`dbo` of `dbo.securitylogging`), if any. */
export function procSchema(proc: string): string | undefined {
  const dot = proc.indexOf('.')
  return dot > 0 && SQL_NAME.test(proc) ? proc.slice(0, dot) : undefined
}

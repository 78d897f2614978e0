import path from 'node:path'
import { loadConfig } from './config/load-config.js'
import type { AuthtrailConfig } from './config/load-config.js'
import { resolveSessionKey } from './config/session-key.js'
import { createCapture } from './capture/middleware.js'
import type { UserDescription } from './capture/middleware.js'
import type { PassportLike } from './capture/passport-hooks.js'
import { createSessionIdHasher } from './capture/session-id.js'
import { createMemoryLedger } from './capture/session-ledger.js'
import type { SessionLedger } from './capture/session-ledger.js'
import { createDatabaseLedger, hasSessionLedger, sessionLedgerTable } from './capture/session-ledger-database.js'
import { createSessionSeal } from './capture/session-seal.js'
import { openLedgerJournal } from './capture/session-ledger-journal.js'
import { createMemoryAttemptStore } from './capture/attempt-store.js'
import type { AttemptStore } from './capture/attempt-store.js'
import { attemptTables, createDatabaseAttemptStore } from './capture/attempt-store-database.js'
import { createBruteForceGuard } from './capture/brute-force.js'
import { hasTable } from './deliver/sibling-table.js'
import type { SessionReader } from './capture/session-timeouts.js'
import type { SessionStoreLike } from './capture/store-hooks.js'
import { createOutbox } from './deliver/outbox.js'
import type { OutboxMetrics, ParkedEvent, RetryOptions } from './deliver/outbox.js'
import { resolveDelivery } from './deliver/resolve-delivery.js'
import { openSpool } from './deliver/spool.js'
import type { Spool } from './deliver/spool.js'
import { detachedEvent, NO_USER } from './capture/request-facts.js'
import { AUDIT_EVENT_TYPES } from './types.js'
import type { AuditEvent } from './types.js'
import type { Delivery } from './deliver/resolve-delivery.js'
import { consoleLogger, prefixed } from './logger.js'
import type { Logger } from './logger.js'
import type { AuditFilter, AuditRow } from './review/audit-query.js'
import { checkAdminSettings, mountAdminPage } from './review/admin-page/mount-admin-page.js'
import type { AdminPageSettings } from './review/admin-page/mount-admin-page.js'

/** Options of {@link authtrail}. Only `passport` is required. */
export interface AuthtrailOptions extends UserDescription, AdminPageSettings {
  /** The passport instance the app authenticates with. */
  readonly passport: PassportLike
  /** Properties file with the `security.logging.*` keys. @defaultValue "config/generalapp.properties" */
  readonly config?: string
  /** Directory that relative paths are resolved against. @defaultValue process.cwd() */
  readonly cwd?: string
  /** Where script procedures are looked up. @defaultValue "<cwd>/procedures" */
  readonly proceduresDir?: string
  /** HMAC key for session ids (≥ 32 characters). @defaultValue $AUTHTRAIL_SESSION_KEY, else a key file in the embedded store's directory */
  readonly sessionKey?: string
  /** Environment to read `AUTHTRAIL_SESSION_KEY` from. @defaultValue process.env */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Receives authtrail's own messages, each starting with "authtrail: ". @defaultValue console */
  readonly logger?: Logger
  /** How often expired sessions are looked for. @defaultValue security.logging.session.sweep.ms (5000) */
  readonly sweepIntervalMs?: number
  /**
   * The app's express-session store. Optional: authtrail otherwise takes `req.sessionStore` from the first
   * request; give it when an instance may have to report timeouts before it has served any request.
   */
  readonly sessionStore?: SessionStoreLike & SessionReader
  /** Most events per delivery. @defaultValue security.logging.batch.size (200) */
  readonly maxBatch?: number
  /** Overrides the security.logging.retry.* keys. */
  readonly retry?: RetryOptions
  /** Opens the write-ahead spool; for tests and custom storage. @defaultValue the file spool of src/deliver/spool.ts */
  readonly openSpool?: (dir: string) => Spool
  /** Longest a header-derived value other than User-Agent may be (IP, username, message), at most 1024. @defaultValue 1024 */
  readonly fieldMaxLength?: number
}

/** A running audit trail. */
export interface Authtrail {
  /** False when `security.logging.proc` is empty: the middleware then does nothing. */
  readonly enabled: boolean
  readonly config: AuthtrailConfig
  /**
   * Express middleware. Mount it after express-session, `passport.initialize()` and `passport.session()`,
   * at the application level so that every request keeps session expiry current. With `isAdmin`, it
   * also serves the audit page at `adminPath`.
   */
  readonly middleware: (req: unknown, res: unknown, next: (err?: unknown) => void) => void
  /** Resolves once every event recorded so far is stored (or parked). */
  flush(): Promise<void>
  /** Checks for expired sessions now, rather than at the next sweep. */
  sweep(): Promise<void>
  /** Delivery state: queue depth, delivered, sink errors, parked events, sessions watched, spool size. */
  metrics(): OutboxMetrics & { readonly sessions: number; readonly spool: { readonly pending: number; readonly bytes: number } }
  /** Events the procedure kept rejecting. */
  parked(): readonly ParkedEvent[]
  /** Reads the audit table of the configured database, newest first. */
  query(filter?: AuditFilter): Promise<AuditRow[]>
  /** Removes the hooks, flushes (at most `timeoutMs`) and closes the store. Call it on shutdown. */
  close(timeoutMs?: number): Promise<void>
}

/** Waits for `step`, at most `ms`; says so when it gives up (the step goes on in the background). */
async function within(step: Promise<unknown>, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = await Promise.race([step.then(() => false, () => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), ms)))])
  clearTimeout(timer)
  if (timedOut) onTimeout()
}

/** The widest the shipped tables' username and ip columns are (MariaDB's VARCHAR(1024)). */
const FIELD_MAX_LENGTH = 1024

const IDLE_METRICS: OutboxMetrics = Object.freeze({ queued: 0, inMemory: 0, inFlight: 0, delivered: 0, sinkErrors: 0, parked: 0, oldestPendingTime: undefined, lastError: undefined })

/**
 * Starts an audit trail for an Express app using express-session and passport: reads the properties
 * file, resolves the logging procedure (failing startup with the file, key and value if it resolves to
 * nothing) and hooks passport.
 *
 * @example
 * const audit = await authtrail({ passport, config: 'config/generalapp.properties' })
 * app.use(session({ secret, cookie: { maxAge: 30 * 60_000 } }))
 * app.use(passport.initialize())
 * app.use(passport.session())
 * app.use(audit.middleware)
 * process.on('SIGTERM', () => audit.close())
 */
export async function authtrail(options: AuthtrailOptions): Promise<Authtrail> {
  if (!options || typeof options.passport?._strategy !== 'function') {
    throw new TypeError('authtrail: options.passport must be the passport instance the app uses, e.g. authtrail({ passport })')
  }
  checkAdminSettings(options)
  const { fieldMaxLength = FIELD_MAX_LENGTH } = options
  if (!Number.isInteger(fieldMaxLength) || fieldMaxLength < 1 || fieldMaxLength > FIELD_MAX_LENGTH) {
    throw new TypeError(`authtrail: options.fieldMaxLength ${String(fieldMaxLength)}: expected a whole number from 1 to ${FIELD_MAX_LENGTH} (the audit table's username and ip columns hold ${FIELD_MAX_LENGTH} characters)`)
  }
  const logger = prefixed(options.logger ?? consoleLogger)
  const cwd = options.cwd ?? process.cwd()
  const config = loadConfig(options.config ?? 'config/generalapp.properties', cwd)
  const proceduresDir = path.resolve(cwd, options.proceduresDir ?? 'procedures')

  const env = options.env ?? process.env
  // Resolved before the database opens: its thread seals the session ledger's store ids with it.
  const key = config.procKind === 'off' ? Buffer.alloc(0) : resolveSessionKey(config, env, options.sessionKey, logger)
  const delivery = await resolveDelivery(config, proceduresDir, env, logger, key)
  if (!delivery) {
    logger.info(`security.logging.proc is empty in ${config.file}: authentication events are not logged${options.isAdmin ? ', and there is no audit page' : ''}`)
    return {
      enabled: false,
      config,
      middleware: (_req, _res, next) => next(),
      flush: async () => {},
      sweep: async () => {},
      metrics: () => ({ ...IDLE_METRICS, sessions: 0, spool: { pending: 0, bytes: 0 } }),
      parked: () => [],
      query: async () => {
        throw new Error(`authtrail: logging is off (security.logging.proc is empty in ${config.file}); there is no audit table to read`)
      },
      close: async () => {},
    }
  }

  try {
    return await start(options, config, delivery, key, logger)
  } catch (err) {
    // Startup failed after the database was opened: release its lock, worker or pool before reporting.
    await delivery.close()
    throw err
  }
}

/**
 * The session ledger: in the audit database when it has the ledger table, so that every instance logging
 * there shares it (a restart forgets nothing, N instances report each timeout once); otherwise in memory.
 */
async function openLedger(delivery: Delivery, key: Buffer, hashSessionId: (id: string) => string, journalDir: string, logger: Logger): Promise<SessionLedger> {
  const database = delivery.database
  if (!database) return createMemoryLedger()
  if (!(await hasSessionLedger(database.client, database.table))) {
    logger.warn(`${database.client.description} has no ${sessionLedgerTable(database.client.dialect, database.table)}: session timeouts are watched by this process only (lost on restart, not shared between instances); deploy procedures/securitylogging.sql again to add it`)
    return createMemoryLedger()
  }
  const seal = createSessionSeal(key)
  return createDatabaseLedger({
    client: database.client,
    auditTable: database.table,
    hashSessionId,
    seal,
    ...(database.insertLedgerRows ? { insert: database.insertLedgerRows } : {}),
    // Beside the spool: what waits for the database during an outage is on disk, not in the heap.
    journal: openLedgerJournal(journalDir, seal, logger.warn),
    warn: logger.warn,
  })
}

/**
 * Where failed-login counts are shared: the audit database when it has the tables, so that a lockout
 * counts every instance's failures; otherwise this process's memory.
 */
async function openAttemptStore(delivery: Delivery, logger: Logger): Promise<AttemptStore> {
  const database = delivery.database
  if (!database) return createMemoryAttemptStore()
  const { attempts } = attemptTables(database.client.dialect, database.table)
  if (!(await hasTable(database.client, attempts, 'attempt_key'))) {
    logger.warn(`${database.client.description} has no ${attempts}: failed logins are counted by this process only (not shared between instances); deploy procedures/ again to add it`)
    return createMemoryAttemptStore()
  }
  return createDatabaseAttemptStore(database.client, database.table)
}

async function start(options: AuthtrailOptions, config: AuthtrailConfig, delivery: Delivery, key: Buffer, logger: Logger): Promise<Authtrail> {
  const hashSessionId = createSessionIdHasher(config.sessionIdMode, key)
  const ledger = await openLedger(delivery, key, hashSessionId, config.spoolDir, logger)
  const spool = (options.openSpool ?? openSpool)(config.spoolDir)
  const outbox = createOutbox({
    onStored: (ids) => spool.done(ids),
    overflow: spool,
    sink: delivery.sink,
    logger,
    maxBatch: options.maxBatch ?? config.batchSize,
    flushDelayMs: config.batchFlushMs,
    // One batch per pooled connection on a database server; PGlite and scripts take one at a time.
    concurrency: config.procKind === 'stored-procedure' && config.db.kind !== 'embedded' ? config.db.pool : 1,
    retry: { ...config.retry, ...options.retry },
  })
  /** While the spool cannot be written: how many events were kept in memory only, and when. */
  let gap: { events: number; from: number; to: number; reason: string } | undefined
  const closeGap = (): void => {
    if (!gap) return
    const { events, from, to, reason } = gap
    gap = undefined
    const event: AuditEvent = {
      ...detachedEvent('AUDIT_GAP', Date.now(), '', NO_USER, '', ''),
      message: `the spool in ${config.spoolDir} could not be written (${reason}): ${events} events were kept in memory only`,
      gap: { events, from, to },
    }
    record(event)
  }
  /**
   * On the request path: spooled first (so a killed process loses nothing it acknowledged), then queued.
   * A spool the disk refuses does not break the login (unless `durable` is asked for, in strict mode):
   * the event still goes out from memory, and an AUDIT_GAP event says so once the spool works again.
   */
  const record = (event: AuditEvent, durable = false): boolean => {
    let spooledAt: number
    try {
      spooledAt = spool.append(event, durable)
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message
      if (!gap) {
        gap = { events: 0, from: event.time, to: event.time, reason }
        logger.error(`cannot write the spool in ${config.spoolDir} (${(err as Error).message}); ${config.mode === 'strict' ? 'logins are refused and other ' : ''}events are kept in memory only until it can be written again`)
      }
      if (durable) return false
      gap.events++
      gap.to = event.time
      outbox.enqueue(event)
      return false
    }
    outbox.enqueue(event, spooledAt)
    closeGap()
    return true
  }
  function replay(): void {
    // Beyond what the outbox holds in memory, each is only counted, and read back from the spool later.
    const replayed = spool.recover((event, position) => outbox.enqueue(event, position))
    if (replayed > 0) logger.info(`replaying ${replayed} events that a process now gone spooled but did not see stored`)
  }
  const warned = new Set<string>()
  const bruteforce = config.bruteforce.userAttempts > 0 || config.bruteforce.ipAttempts > 0
    ? createBruteForceGuard({
        ...config.bruteforce,
        store: await openAttemptStore(delivery, logger),
        secret: key,
        record: (event) => void record(event),
        warn: (key, message) => {
          if (warned.has(key)) return
          warned.add(key)
          logger.warn(message)
        },
      })
    : undefined
  const capture = createCapture({
    bruteforce,
    passport: options.passport,
    hashSessionId,
    limits: { userAgentMaxLength: config.userAgentMaxLength, fieldMaxLength: options.fieldMaxLength ?? FIELD_MAX_LENGTH },
    user: options,
    record,
    strict: config.mode === 'strict',
    logger,
    sweepIntervalMs: options.sweepIntervalMs ?? config.session.sweepMs,
    ledger,
    store: options.sessionStore,
    sessionCookieName: config.session.cookie,
    absoluteSessionMs: config.session.absoluteMs,
    // An instance killed with events in its spool: a live one takes them over (its own restart may never come).
    onSweepTick: replay,
  })
  logger.info(`recording ${AUDIT_EVENT_TYPES.slice(0, -1).join(', ')} and ${AUDIT_EVENT_TYPES.at(-1)} to ${delivery.sink.description}`)
  const adminPage = mountAdminPage(options, { capture, source: delivery.database, key, record: (event) => void record(event), logger })
  const middleware: Authtrail['middleware'] = adminPage
    ? (req, res, next) => capture.middleware(req, res, (err) => (err === undefined ? adminPage(req, res, next) : next(err)))
    : capture.middleware
  replay()

  let closing: Promise<void> | undefined
  return {
    enabled: true,
    config,
    middleware,
    flush: outbox.flush,
    sweep: capture.sweep,
    metrics: () => ({ ...outbox.metrics(), sessions: capture.sessions(), spool: spool.stats() }),
    parked: outbox.parked,
    async query(filter = {}) {
      if (!delivery.read) throw new Error(`authtrail: ${config.proc} is a script procedure; there is no audit table to read`)
      return delivery.read(filter)
    },
    close(timeoutMs = 10_000) {
      // Each step is bounded: a database that hangs must not keep the app from shutting down.
      const bounded = (step: Promise<unknown>, what: string) => within(step, timeoutMs, () => logger.warn(`gave up waiting for ${what} after ${timeoutMs} ms`))
      closing ??= (async () => {
        await bounded(capture.stop(), 'the session sweep under way')
        // A last exchange of failed-login counts may still record a LOCKOUT: before the outbox closes.
        await bounded(bruteforce?.stop().catch((err: Error) => logger.warn(`could not share the last failed-login counts: ${err.message}`)) ?? Promise.resolve(), 'the last failed-login counts')
        await bounded(ledger.close().catch((err) => logger.warn(`could not write new sessions to the session ledger ${ledger.description}: ${(err as Error).message}`)), 'the session ledger')
        if (gap) {
          // The spool never came back: the gap is recorded from memory before the queue drains.
          closeGap()
        }
        await outbox.close(timeoutMs)
        await delivery.close()
        spool.close()
      })()
      return closing
    },
  }
}

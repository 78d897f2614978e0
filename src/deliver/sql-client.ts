/**
 * The one shape authtrail needs from a database driver, so that a backend is one folder: PGlite (in its
 * worker), `pg` and `mysql2` each satisfy it through a thin adapter.
 */
export interface SqlClient {
  /** `postgres` for PostgreSQL and PGlite (`$1` placeholders), `mariadb` for MariaDB/MySQL (`?`). */
  readonly dialect: 'postgres' | 'mariadb'
  /** Where it points, for messages; never contains a password. */
  readonly description: string
  query<Row = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<Row[]>
  close(): Promise<void>
}

/**
 * Whether an error means the database as a whole is unavailable (retry everything later) rather than
 * that the procedure refused this event (retry it alone, then park it). A sink that cannot tell must not
 * park events because the database is down.
 */
export function isUnavailable(err: unknown): boolean {
  // A bug (a TypeError from a value that cannot be serialised, say) is not an outage: waiting would
  // hold every event back for ever; as a refusal, only that batch's events are retried, then parked.
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError || err instanceof ReferenceError) return false
  const e = err as { code?: unknown; sqlState?: unknown; fatal?: unknown; errno?: unknown }
  // mysql2: a fatal error closed the connection; a protocol error has no SQLSTATE of its own.
  if (e.fatal === true) return true
  // A SQLSTATE starts with a digit or is one of the lettered classes; "EPIPE" is a socket error.
  const sqlState = /^([0-9][0-9A-Z]|F0|HV|P0|XX)[0-9A-Z]{3}$/
  const state = typeof e.sqlState === 'string' ? e.sqlState : typeof e.code === 'string' && sqlState.test(e.code) ? e.code : undefined
  // No SQLSTATE at all: a socket error (ECONNREFUSED, ECONNRESET, a timeout) or a closed pool.
  if (state === undefined) return typeof e.errno !== 'number' || typeof e.code === 'string'
  // 08 connection, 53 resources, 57 operator intervention (shutdown), 58 system, XX internal, 40 rollback
  // (serialisation, deadlock), 42 a procedure that no longer exists or cannot be called (configuration).
  return /^(08|53|57|58|XX|40|42)/.test(state)
}

/** Hides the password of a connection URL for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparseable URL)'
  }
}

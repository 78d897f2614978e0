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

/** A query parameter that pg or mysql2 would take as a password (`password`, `sslpassword`, `passwd`). */
const PASSWORD_PARAM = /pass|pwd/i

/**
 * Hides the passwords of a connection URL for messages: the userinfo's and every query parameter that
 * names one, since pg and mysql2 both read `?password=`. It works on the text rather than a parsed URL:
 * an unescaped "/", "?" or "#" in a password makes `new URL` see a host and path that hold the rest of
 * the password, so the userinfo is taken to end at the last "@", which hides too much rather than too
 * little when "@" appears later.
 */
export function redactUrl(url: string): string {
  // A scheme only when a "/" follows its ":": in "app:s3cret@db" the ":" is the password's.
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/+/.exec(url)?.[0] ?? ''
  const at = url.lastIndexOf('@')
  let shown = url
  let queryFrom = scheme.length
  if (at >= scheme.length) {
    const userinfo = url.slice(scheme.length, at)
    const colon = userinfo.indexOf(':')
    const user = colon === -1 ? userinfo : userinfo.slice(0, colon)
    // A user name with "/" or "?" is a mangled URL whose password may have lost its ":".
    const kept = /[/?#]/.test(user) ? '***' : colon === -1 ? user : `${user}:***`
    shown = scheme + kept + url.slice(at)
    queryFrom = scheme.length + kept.length
  }
  const question = shown.indexOf('?', queryFrom)
  if (question === -1) return shown
  const query = shown
    .slice(question + 1)
    .split('&')
    .map((pair) => {
      const name = pair.split('=', 1)[0]!
      return PASSWORD_PARAM.test(decodeName(name)) ? `${name}=***` : pair
    })
  return `${shown.slice(0, question + 1)}${query.join('&')}`
}

/** A query parameter's name as the driver reads it (`pass%77ord` is `password`). */
function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '))
  } catch {
    // Not decodable, so not a name the driver reads as written: hide its value all the same.
    return 'password'
  }
}

/** A mistake in the command line: printed without a stack, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** Exit codes scripts can rely on: `failure` is a store that cannot be read, or (verify) a broken chain; `unreadable` is verify's "cannot read". */
export const EXIT = { ok: 0, failure: 1, usage: 2, unreadable: 3 } as const

/** A command that ran but must end with a particular exit code (e.g. verify found a break). */
export class ExitError extends Error {
  override name = 'ExitError'
  constructor(message: string, readonly code: number, readonly output = '') {
    super(message)
  }
}

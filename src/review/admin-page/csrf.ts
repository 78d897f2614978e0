import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * CSRF tokens for the admin page's state-changing forms: an HMAC of the session id under a key derived
 * from authtrail's session key, so every instance sharing that key accepts a token any of them issued,
 * no state is stored, and a login (which regenerates the session) invalidates the old tokens.
 */
export interface Csrf {
  /** The token for a session; empty without one (the form then fails to verify). */
  token(sessionId: string | undefined): string
  /** Whether `submitted` is the token of this session. */
  verify(sessionId: string | undefined, submitted: unknown): boolean
}

/**
 * A token maker and checker under `key` (authtrail's session key). With raw session ids there is no
 * key (it is empty), and a token derived from nothing would be anyone's to compute: a random key of
 * this process's is used instead, so tokens then hold on this instance until it restarts.
 */
export function createCsrf(key: Buffer): Csrf {
  // A key of its own, so a token never equals any other HMAC authtrail makes with the session key.
  const csrfKey = createHmac('sha256', key.length > 0 ? key : randomBytes(32)).update('authtrail admin page csrf').digest()
  const token = (sessionId: string | undefined): string =>
    sessionId ? createHmac('sha256', csrfKey).update(sessionId).digest('base64url') : ''
  return {
    token,
    verify(sessionId, submitted) {
      const expected = token(sessionId)
      if (expected === '' || typeof submitted !== 'string') return false
      const a = Buffer.from(expected)
      const b = Buffer.from(submitted)
      return a.length === b.length && timingSafeEqual(a, b)
    },
  }
}

/**
 * A second check that a form post came from this site: browsers send Origin on POST and
 * Sec-Fetch-Site where they support it; when present, they must name this origin.
 */
export function sameOrigin(headers: Readonly<Record<string, string | string[] | undefined>>, ownOrigin: string): boolean {
  const site = headers['sec-fetch-site']
  if (typeof site === 'string' && site !== 'same-origin') return false
  const origin = headers.origin
  return origin === undefined || origin === ownOrigin
}

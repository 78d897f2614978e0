import { createHmac } from 'node:crypto'
import type { SessionIdMode } from '../config/load-config.js'

/**
 * Turns a session id into what the audit trail stores. With `hmac` (the default) it is
 * HMAC-SHA256(key, id), cut to 128 bits and written as 32 upper-case hex digits, the shape of a servlet
 * session id: a leaked audit table then hands out no live sessions, yet LOGIN, LOGOUT and SESSIONTIMEOUT
 * of one session still carry the same value. `raw` stores the id as it is, for strict Showcase parity.
 */
export function createSessionIdHasher(mode: SessionIdMode, key: Buffer): (sessionId: string) => string {
  if (mode === 'raw') return (sessionId) => sessionId
  return (sessionId) => (sessionId === '' ? '' : createHmac('sha256', key).update(sessionId).digest('hex').slice(0, 32).toUpperCase())
}

import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { AuthtrailConfig } from './load-config.js'
import { ConfigError, CONFIG_KEYS } from './load-config.js'
import type { Logger } from '../logger.js'

/** Environment variable holding the session-id HMAC key; instances sharing an audit table must share it. */
export const SESSION_KEY_ENV = 'AUTHTRAIL_SESSION_KEY'
export const SESSION_KEY_FILE = 'session-id.key'

/**
 * The key for hashing session ids: the explicit option, else $AUTHTRAIL_SESSION_KEY, else a random key
 * kept in the embedded store's directory (created once, said once), so the demo works on a fresh clone
 * and restarts keep correlating sessions.
 */
export function resolveSessionKey(config: AuthtrailConfig, env: Readonly<Record<string, string | undefined>>, explicit: string | undefined, logger: Logger): Buffer {
  if (config.sessionIdMode === 'raw') return Buffer.alloc(0)
  const given = explicit ?? env[SESSION_KEY_ENV]
  if (given !== undefined) {
    if (given.length < 32) {
      throw new ConfigError(`authtrail: ${explicit !== undefined ? 'option "sessionKey"' : `$${SESSION_KEY_ENV}`} has ${given.length} characters; a session-id key needs at least 32 (e.g. \`openssl rand -hex 32\`), or set ${CONFIG_KEYS.sessionId} = raw in ${config.file}`)
    }
    return Buffer.from(given, 'utf8')
  }
  const file = path.join(config.embeddedDir, SESSION_KEY_FILE)
  try {
    return Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  mkdirSync(config.embeddedDir, { recursive: true })
  const key = randomBytes(32).toString('hex')
  writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' })
  logger.info(`created ${file} to hash session ids; instances that share an audit table must share one key: set $${SESSION_KEY_ENV}`)
  return Buffer.from(key, 'utf8')
}

import { randomBytes } from 'node:crypto'
import { closeSync, constants, copyFileSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
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
  const stored = readKeyFile(file, config)
  if (stored !== undefined) return stored
  mkdirSync(config.embeddedDir, { recursive: true })
  const key = randomBytes(32).toString('hex')
  if (!placeKeyFile(file, key)) return readKeyFile(file, config)!
  logger.info(`created ${file} to hash session ids; instances that share an audit table must share one key: set $${SESSION_KEY_ENV}`)
  return Buffer.from(key, 'utf8')
}

/** The key kept in `file`, held to the same 32 characters as one from the environment; undefined if there is none. */
function readKeyFile(file: string, config: AuthtrailConfig): Buffer | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (text.length < 32) {
    throw new ConfigError(
      `authtrail: ${file} holds a session-id key of ${text.length} characters; it needs at least 32. Delete the file to have a new key made (ids hashed so far will not match new ones), put one in $${SESSION_KEY_ENV}, or set ${CONFIG_KEYS.sessionId} = raw in ${config.file}`,
    )
  }
  return Buffer.from(text, 'utf8')
}

/**
 * Writes `key` to a temporary file and links it into place, so `file` never exists half-written: a
 * crash while writing it in place left an empty key that every later start used. A link, unlike a
 * rename, does not replace a key another process placed meanwhile; false when that happened.
 */
function placeKeyFile(file: string, key: string): boolean {
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fd = openSync(temporary, 'wx', 0o600)
  try {
    try {
      writeSync(fd, key + '\n')
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    try {
      linkSync(temporary, file)
    } catch (err) {
      // A filesystem without hard links (vfat, SMB shares, some FUSE mounts): an exclusive copy. It
      // is not atomic, but a key cut short by a crash is refused at the next start for its length.
      if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
      copyFileSync(temporary, file, constants.COPYFILE_EXCL)
    }
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return false
  } finally {
    unlinkSync(temporary)
  }
}

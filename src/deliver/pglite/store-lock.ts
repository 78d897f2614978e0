import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import path from 'node:path'
import { isAlive, processStamp } from '../process-alive.js'

/**
 * PGlite is a single-process database: two processes opening one data directory corrupt it. The lock
 * file names the holder and the socket through which it answers queries, so the CLI can read through a
 * running app instead of opening the directory itself.
 */
export interface LockHolder {
  readonly pid: number
  /** The holder's {@link processStamp}, so that a restarted container's pid 1 does not take its predecessor's lock for its own. */
  readonly stamp?: number
  readonly socket: string
  readonly since: string
}

export const LOCK_FILE = 'authtrail.lock'


/** The live holder of the store in `dir`, if any; a lock left by a killed process is ignored. */
export function readLockHolder(dir: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(readFileSync(path.join(dir, LOCK_FILE), 'utf8')) as LockHolder
    return Number.isInteger(holder.pid) && isAlive(holder.pid, holder.stamp) ? holder : undefined
  } catch {
    return undefined
  }
}

/**
 * Takes the lock of `dir` for this process, or throws naming the holder. Returns the release function.
 */
export function acquireLock(dir: string, socket: string): () => void {
  // Private to its owner: it holds the audit trail, the session key file and the query socket.
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const file = path.join(dir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600)
      writeSync(fd, JSON.stringify({ pid: process.pid, stamp: processStamp(), socket, since: new Date().toISOString() } satisfies LockHolder))
      closeSync(fd)
      return () => rmSync(file, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = readLockHolder(dir)
      if (holder) {
        const who = holder.pid === process.pid ? 'another authtrail instance in this process' : `process ${holder.pid}`
        throw new Error(`authtrail: the embedded store ${dir} is in use by ${who} since ${holder.since}; PGlite allows one process per directory. Stop it, or give this instance its own security.logging.embedded.dir`)
      }
      rmSync(file, { force: true }) // left by a process that no longer exists
    }
  }
  throw new Error(`authtrail: could not take the lock ${file}`)
}

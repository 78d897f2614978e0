import { readdirSync, renameSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { isAlive } from './process-alive.js'

/**
 * The names of the files in `dir` that processes now gone left behind: those that match `pattern`
 * (group 1 the owner's pid, group 2 its process stamp, if any) and whose owner is not alive, other than
 * `own`.
 */
function* orphansIn(dir: string, pattern: RegExp, own: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const match = pattern.exec(name)
    if (match && path.join(dir, name) !== own && !isAlive(Number(match[1]), match[2] === undefined ? undefined : Number(match[2]))) yield name
  }
}

/**
 * Takes over the files in `dir` that processes now gone left behind (see {@link orphansIn}). Each is
 * renamed first, which claims it (of several processes starting at once, one takes it), handed to
 * `take` under its new name, and then removed.
 */
export function takeOverOrphans(dir: string, pattern: RegExp, own: string, take: (claimed: string) => void): void {
  for (const name of orphansIn(dir, pattern, own)) {
    const claimed = path.join(dir, `${name}.claimed-${process.pid}`)
    try {
      renameSync(path.join(dir, name), claimed)
    } catch {
      continue
    }
    take(claimed)
    unlinkSync(claimed)
  }
}

/**
 * Removes the files in `dir` that processes now gone left behind (see {@link orphansIn}) and that hold
 * nothing another file does not: unlinked without a claim, since there is nothing to take.
 */
export function removeOrphans(dir: string, pattern: RegExp, own: string): void {
  for (const name of orphansIn(dir, pattern, own)) {
    try {
      unlinkSync(path.join(dir, name))
    } catch {
      // Removed first by another process starting at the same time; otherwise harmless until the next start.
    }
  }
}

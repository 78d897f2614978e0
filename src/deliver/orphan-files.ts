import { readdirSync, renameSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { isAlive } from './process-alive.js'

/**
 * Takes over the files in `dir` that processes now gone left behind: those whose name matches
 * `pattern` (group 1 the owner's pid, group 2 its process stamp, if any) and whose owner is not alive,
 * other than `own`. Each is renamed first, which claims it (of several processes starting at once, one
 * takes it), handed to `take` under its new name, and then removed.
 */
export function takeOverOrphans(dir: string, pattern: RegExp, own: string, take: (claimed: string) => void): void {
  for (const name of readdirSync(dir)) {
    const match = pattern.exec(name)
    if (!match || path.join(dir, name) === own || isAlive(Number(match[1]), match[2] === undefined ? undefined : Number(match[2]))) continue
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

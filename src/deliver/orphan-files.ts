import { readdirSync, renameSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { isAlive, processStamp } from './process-alive.js'

/**
 * A file taken over, while its claimer reads it: `<file>.claimed-<pid>.<process stamp>` (no stamp
 * before stamps were kept). One left by a claimer killed while reading it is taken over again.
 */
const CLAIM = /^(.+)\.claimed-(\d+)(?:\.(\d+))?$/

/** An orphan: its name in the directory, and the name its owner gave it. */
interface Orphan {
  readonly name: string
  readonly original: string
}

/**
 * The files in `dir` that processes now gone left behind: those that match `pattern` (group 1 the
 * owner's pid, group 2 its process stamp, if any) and whose owner is not alive, other than `own`, and
 * such files claimed by a process that died before it was done with them.
 */
function* orphansIn(dir: string, pattern: RegExp, own: string): Generator<Orphan> {
  const dead = (match: RegExpExecArray, at: number) => !isAlive(Number(match[at]), match[at + 1] === undefined ? undefined : Number(match[at + 1]))
  for (const name of readdirSync(dir)) {
    const match = pattern.exec(name)
    if (match) {
      if (path.join(dir, name) !== own && dead(match, 1)) yield { name, original: name }
      continue
    }
    const claim = CLAIM.exec(name)
    if (claim && pattern.test(claim[1]!) && dead(claim, 2)) yield { name, original: claim[1]! }
  }
}

/**
 * Takes over the files in `dir` that processes now gone left behind (see {@link orphansIn}). Each is
 * renamed first, which claims it (of several processes starting at once, one takes it), and handed to
 * `take` under its new name. Once all are taken, `settle` makes what they gave durable, and only then
 * are they removed: a process killed before that leaves them to the next one, whole.
 */
export function takeOverOrphans(dir: string, pattern: RegExp, own: string, take: (claimed: string) => void, settle: () => void = () => {}): void {
  const taken: string[] = []
  for (const { name, original } of orphansIn(dir, pattern, own)) {
    const claimed = path.join(dir, `${original}.claimed-${process.pid}.${processStamp()}`)
    try {
      renameSync(path.join(dir, name), claimed)
    } catch {
      continue
    }
    take(claimed)
    taken.push(claimed)
  }
  settle()
  for (const claimed of taken) unlinkSync(claimed)
}

/**
 * Removes the files in `dir` that processes now gone left behind (see {@link orphansIn}) and that hold
 * nothing another file does not: unlinked without a claim, since there is nothing to take.
 */
export function removeOrphans(dir: string, pattern: RegExp, own: string): void {
  for (const { name } of orphansIn(dir, pattern, own)) {
    try {
      unlinkSync(path.join(dir, name))
    } catch {
      // Removed first by another process starting at the same time; otherwise harmless until the next start.
    }
  }
}

import { existsSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * A file shipped with authtrail (e.g. procedures/securitylogging.sql), found from this module whether it
 * runs from src/ or from the compiled dist/src/.
 */
export function packageFile(relative: string): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = path.join(dir, relative)
    if (existsSync(path.join(dir, 'package.json')) && existsSync(candidate)) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error(`authtrail: cannot find ${relative} in the authtrail package`)
    dir = parent
  }
}

import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** A throw-away project directory with its own properties file and embedded store, removed by `remove()`. */
export interface TempProject {
  readonly dir: string
  readonly config: string
  write(relative: string, content: string): string
  remove(): void
}

export const TEST_SESSION_KEY = 'test-key-0123456789abcdef0123456789abcdef'

export function tempProject(properties: Record<string, string> = {}): TempProject {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-test-'))
  const write = (relative: string, content: string): string => {
    const file = path.join(dir, relative)
    mkdirSync(path.dirname(file), { recursive: true })
    writeFileSync(file, content)
    return file
  }
  const merged = { 'security.logging.proc': 'dbo.securitylogging', 'security.logging.embedded.dir': 'data', ...properties }
  const config = write('config/generalapp.properties', Object.entries(merged).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n')
  return { dir, config, write, remove: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A logger that keeps lines for assertions instead of printing them. */
export function memoryLogger(): { lines: string[]; info(m: string): void; warn(m: string): void; error(m: string): void } {
  const lines: string[] = []
  return { lines, info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) }
}

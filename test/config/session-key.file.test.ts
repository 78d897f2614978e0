import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import * as fs from 'node:fs'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { ConfigError, parseConfig } from '../../src/config/load-config.js'
import { resolveSessionKey, SESSION_KEY_FILE } from '../../src/config/session-key.js'
import { memoryLogger } from '../helpers/temp-project.js'

// Spied on so that a test can crash the process's write of a new key half-way.
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>()
  return { ...actual, writeFileSync: vi.fn(actual.writeFileSync), writeSync: vi.fn(actual.writeSync), linkSync: vi.fn(actual.linkSync) }
})

let dir: string
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-key-'))
})
afterEach(() => {
  vi.restoreAllMocks()
  rmSync(dir, { recursive: true, force: true })
})

const config = () => parseConfig({ 'security.logging.proc': 'dbo.securitylogging', 'security.logging.embedded.dir': 'data' }, path.join(dir, 'generalapp.properties'), dir)
const keyFile = () => path.join(dir, 'data', SESSION_KEY_FILE)
const resolve = (logger = memoryLogger()) => resolveSessionKey(config(), {}, undefined, logger)

/** Writes the key file as a crash or a hand edit may have left it. */
function leaveKeyFile(content: string): void {
  mkdirSync(path.join(dir, 'data'), { recursive: true })
  fs.writeFileSync(keyFile(), content)
}

describe('the session-id key kept in the embedded store directory', () => {
  it.each([
    ['nothing', '', 0],
    ['a newline alone', '\n', 0],
    ['3 characters', 'abc\n', 3],
    ['31 characters', `${'k'.repeat(31)}\n`, 31],
  ])('is refused when the file holds %s, naming the file and not printing the key', (_, content, length) => {
    leaveKeyFile(content)
    let err: unknown
    try {
      resolve()
    } catch (caught) {
      err = caught
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).toContain(`authtrail: ${keyFile()} holds a session-id key of ${length} characters; it needs at least 32`)
    if (length > 0) expect((err as Error).message).not.toContain(content.trim())
  })

  it('is used as it is when the file holds 32 characters or more', () => {
    leaveKeyFile(`${'k'.repeat(32)}\n`)
    expect(resolve()).toEqual(Buffer.from('k'.repeat(32)))
  })

  it('is made once, readable by its owner only, said once, with no temporary file left beside it', () => {
    const logger = memoryLogger()
    const key = resolve(logger)
    expect(key.toString()).toMatch(/^[0-9a-f]{64}$/)
    expect(readFileSync(keyFile(), 'utf8')).toBe(`${key.toString()}\n`)
    expect(statSync(keyFile()).mode & 0o777).toBe(0o600)
    expect(readdirSync(path.join(dir, 'data'))).toEqual([SESSION_KEY_FILE])
    expect(logger.lines).toEqual([`created ${keyFile()} to hash session ids; instances that share an audit table must share one key: set $AUTHTRAIL_SESSION_KEY`])
    expect(resolve()).toEqual(key)
  })

  it('is made on a filesystem without hard links too, by an exclusive copy', () => {
    vi.mocked(fs.linkSync).mockImplementationOnce(() => {
      throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' })
    })
    const key = resolve()
    expect(readFileSync(keyFile(), 'utf8')).toBe(`${key.toString()}\n`)
    expect(readdirSync(path.join(dir, 'data'))).toEqual([SESSION_KEY_FILE])
    expect(resolve()).toEqual(key)
  })

  it('is never left empty by a crash while it is written: the next start makes a whole key', () => {
    // The write fails after the file was created, as when the process dies between the two.
    const crash = (): never => {
      throw new Error('simulated crash while writing the key')
    }
    vi.mocked(fs.writeFileSync).mockImplementationOnce(((target: fs.PathOrFileDescriptor) => {
      fs.closeSync(fs.openSync(target as string, 'w'))
      crash()
    }) as typeof fs.writeFileSync)
    vi.mocked(fs.writeSync).mockImplementationOnce(crash)
    expect(() => resolve()).toThrow('simulated crash')
    expect(resolve().toString()).toMatch(/^[0-9a-f]{64}$/)
  })
})

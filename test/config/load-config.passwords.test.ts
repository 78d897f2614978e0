import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import passportModule from 'passport'
import { authtrail } from '../../src/authtrail.js'
import { ConfigError, loadConfig } from '../../src/config/load-config.js'
import { memoryLogger, TEST_SESSION_KEY } from '../helpers/temp-project.js'

let dir: string

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-config-'))
})
afterEach(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** The message of the ConfigError that loading `text` as a properties file throws. */
function configErrorOf(text: string): string {
  const file = path.join(dir, 'generalapp.properties')
  writeFileSync(file, text)
  try {
    loadConfig(file, dir)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).toContain(file)
    return (err as Error).message
  }
  throw new Error('expected a ConfigError, but nothing was thrown')
}

describe('a database password never reaches a log line', () => {
  const Passport = (passportModule as unknown as { Passport: new () => unknown }).Passport

  it('hides a ?password= parameter in the line saying the database does not answer', async () => {
    const file = path.join(dir, 'generalapp.properties')
    // Port 1 refuses at once: authtrail starts waiting for the database and says so, naming it.
    writeFileSync(file, 'security.logging.proc = dbo.securitylogging\nsecurity.logging.db = postgres://postgres@127.0.0.1:1/test?sslmode=disable&password=s3cretPW\n')
    const logger = memoryLogger()
    const audit = await authtrail({ passport: new Passport() as Parameters<typeof authtrail>[0]['passport'], cwd: dir, config: file, logger, sessionKey: TEST_SESSION_KEY })
    await audit.close()
    expect(logger.lines.join('\n')).toContain('postgres://postgres@127.0.0.1:1/test?sslmode=disable&password=***')
    expect(logger.lines.join('\n')).not.toContain('s3cretPW')
  })
})

describe('a ConfigError never echoes a database password', () => {
  it.each([
    ['a password holding "/"', 'postgres://audit:s3cr/et@db.internal:5432/audit', 'postgres://audit:***@db.internal:5432/audit'],
    ['a password holding "?"', 'postgres://audit:s3cr?et@db.internal:5432/audit', 'postgres://audit:***@db.internal:5432/audit'],
    ['a URL with one slash missing', 'postgresql:/audit:s3cr/et@db.internal:5432/audit', 'postgresql:/audit:***@db.internal:5432/audit'],
    ['an unknown scheme', 'oracle://scott:s3cr/et@db/orcl?password=s3cr/et', 'oracle://scott:***@db/orcl?password=***'],
  ])('hides %s in security.logging.db', (_, url, shown) => {
    const message = configErrorOf(`security.logging.proc = dbo.securitylogging\nsecurity.logging.db = ${url}\n`)
    expect(message).toContain(`key "security.logging.db" = ${JSON.stringify(shown)}`)
    expect(message).not.toContain('s3cr')
  })

  it('hides the value of a misspelt key that holds a password, such as security.logging.db.password', () => {
    const message = configErrorOf('security.logging.proc = dbo.securitylogging\nsecurity.logging.db.password = s3cretPW\n')
    expect(message).toContain('key "security.logging.db.password" = "***": unknown key')
    expect(message).not.toContain('s3cretPW')
  })
})

import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
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

/** Writes `text` as a properties file in the temp dir and returns its absolute path. */
function writeProperties(text: string, name = 'generalapp.properties'): string {
  const file = path.join(dir, name)
  writeFileSync(file, text)
  return file
}

/** Loads `text` as a properties file, relative to the temp dir. */
function load(text: string) {
  writeProperties(text)
  return loadConfig('generalapp.properties', dir)
}

/** The ConfigError thrown by `fn`, failing the test if it throws nothing or something else. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError, but nothing was thrown')
}

/** Asserts the error names the absolute file, the key and the JSON-quoted value. */
function expectNames(err: Error, file: string, key: string, value: string): void {
  expect(path.isAbsolute(file)).toBe(true)
  expect(err.message).toContain(file)
  expect(err.message).toContain(`"${key}"`)
  expect(err.message).toContain(JSON.stringify(value))
}

describe('loadConfig reads java.util.Properties syntax', () => {
  it('joins a value continued with a trailing backslash and drops the leading whitespace of the continuation', () => {
    const config = load('security.logging.proc = dbo.\\\n        securitylogging\n')
    expect(config.proc).toBe('dbo.securitylogging')
    expect(config.procKind).toBe('stored-procedure')
  })

  it('keeps continuing over several lines until a line does not end in a backslash', () => {
    const config = load('security.logging.proc = \\\n  dbo.\\\n  security\\\n  logging\nsecurity.logging.table = audit\n')
    expect(config.proc).toBe('dbo.securitylogging')
    expect(config.table).toBe('dbo.audit')
  })

  it('accepts ":" as the separator between key and value', () => {
    const config = load('security.logging.proc: dbo.securitylogging\nsecurity.logging.sessionid:raw\n')
    expect(config.proc).toBe('dbo.securitylogging')
    expect(config.sessionIdMode).toBe('raw')
  })

  it('accepts whitespace alone as the separator between key and value', () => {
    const config = load('security.logging.proc dbo.securitylogging\nsecurity.logging.useragent.maxlength\t\t1024\n')
    expect(config.proc).toBe('dbo.securitylogging')
    expect(config.userAgentMaxLength).toBe(1024)
  })

  it('decodes \\uXXXX escapes in a value', () => {
    const config = load('security.logging.proc = dbo.\\u0073ecuritylogging\nsecurity.logging.table = \\u0073ecuritylog\n')
    expect(config.proc).toBe('dbo.securitylogging')
    expect(config.table).toBe('dbo.securitylog')
  })

  it('ignores comment lines starting with "#" or "!", including ones that look like keys', () => {
    const config = load(
      [
        '# security.logging.proc = comment.hash',
        '! security.logging.proc = comment.bang',
        '   # indented comment',
        '#security.logging.procedure = would be an unknown key',
        'security.logging.proc = dbo.securitylogging',
        '',
      ].join('\n'),
    )
    expect(config.proc).toBe('dbo.securitylogging')
    expect(Object.keys(config.properties)).toEqual(['security.logging.proc'])
  })

  it('rejects a security.logging.* key set twice, naming the file, the key and both lines, rather than take the last', () => {
    const file = writeProperties('security.logging.proc = dbo.securitylogging\nsecurity.logging.mode = strict\n# later\nsecurity.logging.mode = fail-open\n')
    const err = configError(() => loadConfig(file, dir))
    expect(err.message).toBe(`authtrail: ${file}: key "security.logging.mode" is set on lines 2 and 4; only the last would count, so keep the one you mean and remove the others`)
  })

  it('counts a key continued over several lines from its first line, and names every repetition', () => {
    const file = writeProperties('security.logging.table = \\\n  audit\nsecurity.logging.table = a\nsecurity.logging.table = b\n')
    expect(configError(() => loadConfig(file, dir)).message).toContain('key "security.logging.table" is set on lines 1, 3 and 4;')
  })

  it('takes the last value of a repeated key outside security.logging.*, as java.util.Properties does', () => {
    const config = load('security.logging.proc = my-logger.mjs\nmy.logger.target = first.xml\nmy.logger.target = last.xml\n')
    expect(config.properties['my.logger.target']).toBe('last.xml')
  })

  it('keeps every property of the file, authtrail keys and others, for script procedures', () => {
    const config = load('security.logging.proc = my-logger.mjs\nmy.logger.target = /var/log/audit.xml\n')
    expect(config.properties).toEqual({ 'security.logging.proc': 'my-logger.mjs', 'my.logger.target': '/var/log/audit.xml' })
  })

  it('resolves the file relative to cwd and records its absolute path', () => {
    mkdirSync(path.join(dir, 'config'))
    writeFileSync(path.join(dir, 'config', 'app.properties'), 'security.logging.proc = dbo.securitylogging\n')
    const config = loadConfig('config/app.properties', dir)
    expect(config.file).toBe(path.join(dir, 'config', 'app.properties'))
    expect(config.embeddedDir).toBe(path.join(dir, 'data'))
  })
})

describe('loadConfig decides what security.logging.proc is', () => {
  it('turns logging off when the proc key is missing', () => {
    const config = load('some.other.key = 1\n')
    expect(config.procKind).toBe('off')
    expect(config.proc).toBe('')
  })

  it('turns logging off when the proc value is empty', () => {
    expect(load('security.logging.proc =\n').procKind).toBe('off')
    expect(load('security.logging.proc =    \n').procKind).toBe('off')
  })

  it('treats a name ending in .mjs as a script', () => {
    const config = load('security.logging.proc = my-logger.mjs\n')
    expect(config.procKind).toBe('script')
    expect(config.proc).toBe('my-logger.mjs')
  })

  it('treats names ending in .js and .ts as scripts too', () => {
    expect(load('security.logging.proc = logger.js\n').procKind).toBe('script')
    expect(load('security.logging.proc = audit/logger.ts\n').procKind).toBe('script')
  })

  it('treats a schema-qualified or bare SQL name as a stored procedure', () => {
    expect(load('security.logging.proc = dbo.securitylogging\n').procKind).toBe('stored-procedure')
    expect(load('security.logging.proc = securitylogging\n').procKind).toBe('stored-procedure')
  })

  it('rejects a script path that climbs out of procedures/ with ".."', () => {
    const file = writeProperties('security.logging.proc = ../evil.mjs\n')
    const err = configError(() => loadConfig(file, dir))
    expectNames(err, file, 'security.logging.proc', '../evil.mjs')
  })

  it('rejects a script path with ".." in the middle', () => {
    const file = writeProperties('security.logging.proc = sub/../../evil.mjs\n')
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.proc', 'sub/../../evil.mjs')
  })

  it('rejects an absolute script path', () => {
    const file = writeProperties('security.logging.proc = /tmp/evil.mjs\n')
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.proc', '/tmp/evil.mjs')
  })

  it('rejects a proc that is neither a SQL name nor a script, like "drop table;"', () => {
    const file = writeProperties('security.logging.proc = drop table;\n')
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.proc', 'drop table;')
  })
})

describe('loadConfig errors name the file, the key and the value', () => {
  it('rejects an unknown security.logging.* key such as the misspelling security.logging.procedure', () => {
    const file = writeProperties('security.logging.procedure = dbo.securitylogging\n')
    const err = configError(() => loadConfig(file, dir))
    expectNames(err, file, 'security.logging.procedure', 'dbo.securitylogging')
  })

  it('rejects an unknown security.logging.* key even when the real key is also present', () => {
    const file = writeProperties('security.logging.proc = dbo.securitylogging\nsecurity.logging.sessionId = raw\n')
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.sessionId', 'raw')
  })

  it('leaves keys outside security.logging.* alone', () => {
    expect(() => load('security.other = 1\nlogging.proc = x\n')).not.toThrow()
  })

  it('rejects a security.logging.sessionid other than hmac or raw', () => {
    const file = writeProperties('security.logging.proc = dbo.securitylogging\nsecurity.logging.sessionid = plain\n')
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.sessionid', 'plain')
  })

  it.each(['abc', '10', '63', '65537', '-1', '1e3', '512.5'])('rejects security.logging.useragent.maxlength = %s', (value) => {
    const file = writeProperties(`security.logging.proc = dbo.securitylogging\nsecurity.logging.useragent.maxlength = ${value}\n`)
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.useragent.maxlength', value)
  })

  it('accepts security.logging.useragent.maxlength at both ends of its range', () => {
    expect(load('security.logging.useragent.maxlength = 64\n').userAgentMaxLength).toBe(64)
    expect(load('security.logging.useragent.maxlength = 65536\n').userAgentMaxLength).toBe(65536)
  })

  it('rejects a security.logging.db other than embedded', () => {
    const file = writeProperties('security.logging.proc = dbo.securitylogging\nsecurity.logging.db = postgres\n')
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.db', 'postgres')
  })

  it('rejects a security.logging.table that is not a SQL name', () => {
    const file = writeProperties('security.logging.proc = dbo.securitylogging\nsecurity.logging.table = audit; drop\n')
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.table', 'audit; drop')
  })

  it.each([
    ['security.logging.session.sweep.ms', '50'],
    ['security.logging.session.sweep.ms', '5s'],
    ['security.logging.session.absolute.seconds', '-5'],
    ['security.logging.session.absolute.seconds', '8h'],
    ['security.logging.session.cookie', 'my cookie'],
    ['security.logging.session.cookie', 'sid;x'],
  ])('rejects %s = %s', (key, value) => {
    const file = writeProperties(`security.logging.proc = dbo.securitylogging\n${key} = ${value}\n`)
    expectNames(configError(() => loadConfig(file, dir)), file, key, value)
  })

  it('reads the session keys, with a sweep every 5 s, no absolute lifetime and connect.sid by default', () => {
    expect(load('security.logging.proc = dbo.securitylogging\n').session).toEqual({ sweepMs: 5000, absoluteMs: 0, cookie: 'connect.sid' })
    expect(load('security.logging.session.sweep.ms = 250\nsecurity.logging.session.absolute.seconds = 28800\nsecurity.logging.session.cookie = app.sid\n').session).toEqual({
      sweepMs: 250,
      absoluteMs: 28_800_000,
      cookie: 'app.sid',
    })
  })

  it('names the absolute path of a properties file that does not exist', () => {
    const err = configError(() => loadConfig('config/missing.properties', dir))
    expect(err.message).toContain(path.join(dir, 'config', 'missing.properties'))
  })
})

describe('loadConfig qualifies the audit table', () => {
  it('gives an unqualified table the schema of the procedure', () => {
    expect(load('security.logging.proc = dbo.securitylogging\n').table).toBe('dbo.securitylog')
  })

  it('gives an unqualified table the public schema when the procedure has none', () => {
    expect(load('security.logging.proc = securitylogging\n').table).toBe('public.securitylog')
  })

  it('gives the public schema when logging is off', () => {
    expect(load('security.logging.proc =\n').table).toBe('public.securitylog')
  })

  it('keeps a table that is already schema-qualified', () => {
    expect(load('security.logging.proc = dbo.securitylogging\nsecurity.logging.table = audit.events\n').table).toBe('audit.events')
  })

  it('does not read a schema from a script file name', () => {
    // "audit.mjs" is a script, not a procedure in schema "audit".
    expect(load('security.logging.proc = audit.mjs\n').table).toBe('public.securitylog')
  })
})

describe('authtrail() startup with a procedure name that resolves to nothing', () => {
  const Passport = (passportModule as unknown as { Passport: new () => unknown }).Passport

  const start = (properties: string, logger = memoryLogger()) =>
    authtrail({
      passport: new Passport() as Parameters<typeof authtrail>[0]['passport'],
      cwd: dir,
      config: writeProperties(properties),
      logger,
      sessionKey: TEST_SESSION_KEY,
    })

  it('rejects a stored procedure missing from the embedded store, naming the file, key and value', async () => {
    const file = path.join(dir, 'generalapp.properties')
    const failure = await start('security.logging.proc = dbo.nosuchproc\n').then(
      async (audit) => {
        await audit.close()
        throw new Error('authtrail() started with a procedure that does not exist')
      },
      (err: unknown) => err as Error,
    )
    expect(failure).toBeInstanceOf(ConfigError)
    expectNames(failure, file, 'security.logging.proc', 'dbo.nosuchproc')
  })

  it('rejects a script with no file in procedures/, naming the file, key and value', async () => {
    const file = path.join(dir, 'generalapp.properties')
    mkdirSync(path.join(dir, 'procedures'))
    const failure = await start('security.logging.proc = missing-logger.mjs\n').then(
      async (audit) => {
        await audit.close()
        throw new Error('authtrail() started with a script that does not exist')
      },
      (err: unknown) => err as Error,
    )
    expect(failure).toBeInstanceOf(ConfigError)
    expectNames(failure, file, 'security.logging.proc', 'missing-logger.mjs')
  })

  it('starts disabled and says once that nothing is logged when the proc is empty', async () => {
    const logger = memoryLogger()
    const audit = await start('security.logging.proc =\n', logger)
    try {
      expect(audit.enabled).toBe(false)
      expect(audit.config.procKind).toBe('off')
      expect(logger.lines).toHaveLength(1)
      expect(logger.lines[0]).toMatch(/^authtrail: /)
      expect(logger.lines[0]).toContain('not logged')
      expect(logger.lines[0]).toContain(path.join(dir, 'generalapp.properties'))
    } finally {
      await audit.close()
    }
  })

  it('rejects an unknown security.logging.* key at startup before opening any store', async () => {
    const file = path.join(dir, 'generalapp.properties')
    const failure = await start('security.logging.procedure = dbo.securitylogging\n').then(
      async (audit) => {
        await audit.close()
        throw new Error('authtrail() started with a misspelt key')
      },
      (err: unknown) => err as Error,
    )
    expect(failure).toBeInstanceOf(ConfigError)
    expectNames(failure, file, 'security.logging.procedure', 'dbo.securitylogging')
  })
})

describe('loadConfig reads the database of a stored procedure', () => {
  const file = () => path.join(dir, 'generalapp.properties')

  it('takes a postgres:// URL with pool, batch size and flush interval', () => {
    const config = load(
      'security.logging.proc = dbo.securitylogging\nsecurity.logging.db = postgres://audit@db.example:5432/audit\nsecurity.logging.db.pool = 6\nsecurity.logging.batch.size = 250\nsecurity.logging.batch.flush.ms = 50\n',
    )
    expect(config.db).toEqual({ kind: 'postgres', url: 'postgres://audit@db.example:5432/audit', passwordEnv: undefined, pool: 6 })
    expect([config.batchSize, config.batchFlushMs]).toEqual([250, 50])
  })

  it('takes mariadb:// and mysql:// URLs, and the name of the password variable', () => {
    for (const url of ['mariadb://app@127.0.0.1:3306/audit', 'mysql://app@127.0.0.1/audit']) {
      const config = load(`security.logging.proc = securitylogging\nsecurity.logging.db = ${url}\nsecurity.logging.db.password.env = AUDIT_DB_PASSWORD\n`)
      expect(config.db).toMatchObject({ kind: 'mariadb', url, passwordEnv: 'AUDIT_DB_PASSWORD', pool: 2 })
    }
  })

  it('defaults to the embedded store, batches of 1000 and a 100 ms flush', () => {
    const config = load('security.logging.proc = dbo.securitylogging\n')
    expect(config.db).toEqual({ kind: 'embedded' })
    expect([config.batchSize, config.batchFlushMs]).toEqual([1000, 100])
  })

  it('rejects an unknown database without echoing a password in the message', () => {
    const err = configError(() => load('security.logging.proc = p\nsecurity.logging.db = oracle://scott:tiger@db/orcl\n'))
    expect(err.message).toContain(file())
    expect(err.message).toContain('"security.logging.db"')
    expect(err.message).not.toContain('tiger')
  })

  it('rejects a pool, batch size or flush interval out of range, naming key and value', () => {
    for (const [key, value] of [['security.logging.db.pool', '0'], ['security.logging.batch.size', 'many'], ['security.logging.batch.flush.ms', '-5']] as const) {
      const err = configError(() => load(`security.logging.proc = p\nsecurity.logging.db = postgres://u@h/d\n${key} = ${value}\n`))
      expectNames(err, file(), key, value)
    }
  })

  it('rejects a password variable name that is not a variable name, without showing it: it may be the password', () => {
    const err = configError(() => load('security.logging.proc = p\nsecurity.logging.db = postgres://u@h/d\nsecurity.logging.db.password.env = Hunter2-pass!\n'))
    expectNames(err, file(), 'security.logging.db.password.env', '***')
    expect(err.message).not.toContain('Hunter2')
  })
})

describe('loadConfig names the place of a malformed \\uXXXX escape', () => {
  it('names the file, the line, the key and the escape', () => {
    const file = writeProperties('security.logging.proc = dbo.securitylogging\n# a comment\nsecurity.logging.mode = stri\\u00ct\n')
    const err = configError(() => loadConfig(file, dir))
    expect(err.message).toBe(`authtrail: ${file}: line 3 (key "security.logging.mode"): malformed escape "\\\\u00ct": a \\u must be followed by four hexadecimal digits (write \\\\u for a backslash and a u)`)
  })

  it('names the line of the escape and the key it continues, and an escape cut short at the end of the file', () => {
    const file = writeProperties('security.logging.proc = dbo.\\\n  secu\\u00\n')
    expect(configError(() => loadConfig(file, dir)).message).toContain(`${file}: line 2 (key "security.logging.proc"): malformed escape`)
  })

  it('does not echo the escape of security.logging.db, whose value may hold a password', () => {
    const file = writeProperties('security.logging.proc = p\nsecurity.logging.db = postgres://audit:s3cr\\uet@db/audit\n')
    const err = configError(() => loadConfig(file, dir))
    expect(err.message).toContain(`${file}: line 2 (key "security.logging.db"): malformed escape in its value:`)
    expect(err.message).not.toContain('s3cr')
  })
})

describe('loadConfig refuses an empty value rather than take the default', () => {
  it.each([
    ['security.logging.mode', 'the default, "fail-open"'],
    ['security.logging.chain', 'the default, "off"'],
    ['security.logging.db', 'the default, "embedded"'],
    ['security.logging.db.password.env', 'none'],
    ['security.logging.retry.attempts', 'the default, "8"'],
  ])('rejects %s = (nothing), naming the file, the key and the empty value', (key, fallback) => {
    const file = writeProperties(`security.logging.proc = dbo.securitylogging\n${key} =   \n`)
    const err = configError(() => loadConfig(file, dir))
    expect(err.message).toBe(`authtrail: ${file}: key "${key}" = "": the value is empty; set one, or remove the line to have ${fallback}`)
  })

  it('rejects a key with no separator and no value at all', () => {
    const file = writeProperties('security.logging.proc = dbo.securitylogging\nsecurity.logging.mode\n')
    expectNames(configError(() => loadConfig(file, dir)), file, 'security.logging.mode', '')
  })

  it('still takes an empty security.logging.proc as logging off', () => {
    expect(load('security.logging.proc =\nsecurity.logging.mode = strict\n').procKind).toBe('off')
  })
})

describe('loadConfig checks the retry delays against each other', () => {
  it('rejects a first delay larger than the maximum, naming the file, both keys and the values', () => {
    const file = writeProperties('security.logging.proc = dbo.securitylogging\nsecurity.logging.retry.initial.ms = 600000\nsecurity.logging.retry.max.ms = 1\n')
    const err = configError(() => loadConfig(file, dir))
    expectNames(err, file, 'security.logging.retry.initial.ms', '600000')
    expect(err.message).toContain('security.logging.retry.max.ms = 1;')
  })

  it('rejects a first delay above the default maximum of 30000 when only the first is set', () => {
    expectNames(configError(() => load('security.logging.retry.initial.ms = 30001\n')), path.join(dir, 'generalapp.properties'), 'security.logging.retry.initial.ms', '30001')
  })

  it('accepts a first delay equal to the maximum', () => {
    expect(load('security.logging.retry.initial.ms = 500\nsecurity.logging.retry.max.ms = 500\n').retry).toEqual({ maxAttempts: 8, initialDelayMs: 500, maxDelayMs: 500 })
  })
})

describe('loadConfig checks the database keys whatever the database', () => {
  const file = () => path.join(dir, 'generalapp.properties')

  it('rejects a bad pool or password variable even with the embedded store', () => {
    expectNames(configError(() => load('security.logging.proc = p\nsecurity.logging.db.pool = -5\n')), file(), 'security.logging.db.pool', '-5')
    expectNames(configError(() => load('security.logging.proc = p\nsecurity.logging.db.password.env = not a name!\n')), file(), 'security.logging.db.password.env', '***')
  })

  it.each([
    ['postgres://', 'names no host'],
    ['mariadb://app@db.internal:3306', 'names no database'],
    ['postgres://audit@db.internal:5432/', 'names no database'],
    ['mysql:///audit?host=db.internal', 'names no host'],
  ])('rejects security.logging.db = %s, which %s', (url, why) => {
    const err = configError(() => load(`security.logging.proc = p\nsecurity.logging.db = ${url}\n`))
    expectNames(err, file(), 'security.logging.db', url)
    expect(err.message).toContain(why)
  })

  it('rejects a URL whose password holds an unescaped "/" that moved it into the database name, without echoing it', () => {
    const err = configError(() => load('security.logging.proc = p\nsecurity.logging.db = postgres://audit:123/s3cret@db.internal:5432/audit\n'))
    expectNames(err, file(), 'security.logging.db', 'postgres://audit:***@db.internal:5432/audit')
    expect(err.message).toContain('%2F')
    expect(err.message).not.toContain('s3cret')
  })

  it('takes a PostgreSQL socket directory from ?host= in place of a host', () => {
    expect(load('security.logging.proc = p\nsecurity.logging.db = postgres:///audit?host=/run/postgresql\n').db).toMatchObject({ kind: 'postgres', pool: 2 })
  })
})

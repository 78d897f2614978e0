import { describe, expect, it } from 'vitest'
import { redactUrl } from '../../src/deliver/sql-client.js'

describe('redactUrl, for the descriptions of database clients', () => {
  it('keeps a URL without a password as it is', () => {
    expect(redactUrl('postgres://postgres@127.0.0.1:5432/test')).toBe('postgres://postgres@127.0.0.1:5432/test')
    expect(redactUrl('mariadb://root@127.0.0.1:3306/test?connectTimeout=1000')).toBe('mariadb://root@127.0.0.1:3306/test?connectTimeout=1000')
  })

  it('hides the password of the userinfo and keeps the user name', () => {
    expect(redactUrl('postgres://audit:s3cretPW@db.internal:5432/audit')).toBe('postgres://audit:***@db.internal:5432/audit')
  })

  it('hides a password parameter, which pg and mysql2 read as the password, however its name is spelt', () => {
    expect(redactUrl('postgres://postgres@127.0.0.1:5432/test?password=s3cretPW')).toBe('postgres://postgres@127.0.0.1:5432/test?password=***')
    expect(redactUrl('postgres://u@h/d?sslmode=require&sslpassword=s3cretPW&PASSWORD=s3cretPW&pass%77ord=s3cretPW')).toBe(
      'postgres://u@h/d?sslmode=require&sslpassword=***&PASSWORD=***&pass%77ord=***',
    )
  })

  it('hides a password holding "/", "?", "#" or "@", which a URL parser would read as path, query, fragment or host', () => {
    for (const password of ['s3cr/etPW', 's3cr?etPW', 's3cr#etPW', 's3cr@etPW']) {
      const shown = redactUrl(`postgres://audit:${password}@db.internal:5432/audit`)
      expect(shown).toBe('postgres://audit:***@db.internal:5432/audit')
    }
  })

  it('hides the whole userinfo of a URL with a slash missing', () => {
    expect(redactUrl('postgresql:/audit:s3cretPW@db.internal:5432/audit')).toBe('postgresql:/audit:***@db.internal:5432/audit')
    expect(redactUrl('postgres:audit/s3cretPW@db.internal/audit')).toBe('postgres:***@db.internal/audit')
    // No scheme at all: the ":" is the password's, not a scheme's.
    expect(redactUrl('app:s3cretPW@db.internal:5432/audit')).toBe('app:***@db.internal:5432/audit')
  })
})

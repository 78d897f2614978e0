import { describe, expect, it } from 'vitest'
import { parseConfig } from '../../src/config/load-config.js'
import { resolveChainKey, resolveCheckpointSigner } from '../../src/config/chain-keys.js'
import { checkpointKeys } from '../helpers/chain-keys.js'

const FILE = '/etc/app/generalapp.properties'
const parse = (properties: Record<string, string>) => parseConfig({ 'security.logging.proc': 'dbo.securitylogging', ...properties }, FILE, '/srv/app')

describe('the security.logging.chain keys', () => {
  it('are off by default, with the keys read from AUTHTRAIL_CHAIN_KEY and AUTHTRAIL_CHECKPOINT_KEY, a checkpoint every 1000 links or 60 s', () => {
    expect(parse({}).chain).toEqual({ enabled: false, keyEnv: 'AUTHTRAIL_CHAIN_KEY', signingKeyEnv: 'AUTHTRAIL_CHECKPOINT_KEY', checkpointEvents: 1000, checkpointMs: 60_000 })
    expect(parse({ 'security.logging.chain': 'on', 'security.logging.chain.key.env': 'AUDIT_CHAIN', 'security.logging.chain.checkpoint.seconds': '5' }).chain).toMatchObject({ enabled: true, keyEnv: 'AUDIT_CHAIN', checkpointMs: 5000 })
  })

  it('reject a value other than on or off, naming the file, the key and the value', () => {
    expect(() => parse({ 'security.logging.chain': 'yes' })).toThrow(`authtrail: ${FILE}: key "security.logging.chain" = "yes": expected "off" (the default) or "on"`)
  })

  it('reject a variable name that is not one, and a checkpoint interval out of range', () => {
    expect(() => parse({ 'security.logging.chain.key.env': 'MY KEY' })).toThrow(/key "security\.logging\.chain\.key\.env" = "MY KEY": expected the name of an environment variable/)
    expect(() => parse({ 'security.logging.chain.checkpoint.events': '0' })).toThrow(/key "security\.logging\.chain\.checkpoint\.events" = "0": expected links: a whole number from 1/)
  })

  it('refuse chaining on MariaDB and with a script procedure, rather than silently not chaining', () => {
    expect(() => parse({ 'security.logging.chain': 'on', 'security.logging.db': 'mariadb://app@db:3306/audit' })).toThrow(/key "security\.logging\.chain" = "on": tamper evidence is implemented for PostgreSQL and the embedded store only, not MariaDB/)
    expect(() => parse({ 'security.logging.chain': 'on', 'security.logging.proc': 'audit.mjs' })).toThrow(/chaining needs a stored procedure .* is a script/)
  })
})

describe('the chain keys from the environment', () => {
  const config = parse({ 'security.logging.chain': 'on' })

  it('take the HMAC key from the variable the file names, at least 32 characters, and never print it', () => {
    expect(resolveChainKey(config, { AUTHTRAIL_CHAIN_KEY: 'k'.repeat(32) })).toEqual(Buffer.from('k'.repeat(32)))
    expect(() => resolveChainKey(config, {})).toThrow(`authtrail: ${FILE}: key "security.logging.chain.key.env" = "AUTHTRAIL_CHAIN_KEY": the environment variable AUTHTRAIL_CHAIN_KEY is not set`)
    let message = ''
    try {
      resolveChainKey(config, { AUTHTRAIL_CHAIN_KEY: 'tiny-secret-value' })
    } catch (err) {
      message = (err as Error).message
    }
    expect(message).toContain('holds 17 characters; a chain key needs at least 32')
    expect(message).not.toContain('tiny-secret-value')
  })

  it('take an Ed25519 private key in PEM, and refuse another kind of key or garbage without printing it', () => {
    const { privatePem } = checkpointKeys()
    expect(resolveCheckpointSigner(config, { AUTHTRAIL_CHECKPOINT_KEY: privatePem }).keyId).toMatch(/^[0-9a-f]{16}$/)
    expect(() => resolveCheckpointSigner(config, { AUTHTRAIL_CHECKPOINT_KEY: 'not a key at all' })).toThrow(/AUTHTRAIL_CHECKPOINT_KEY is not a private key in PEM/)
    expect(() => resolveCheckpointSigner(config, { AUTHTRAIL_CHECKPOINT_KEY: 'not a key at all' })).not.toThrow(/not a key at all/)
  })
})

describe('the security.logging.bruteforce keys', () => {
  it('count 5 failures per user and 20 per address in 15 minutes, record only, and sync every second by default', () => {
    expect(parse({}).bruteforce).toEqual({ userAttempts: 5, ipAttempts: 20, windowMs: 900_000, blockMs: 900_000, block: false, syncMs: 1000 })
    expect(parse({ 'security.logging.bruteforce.block': 'true', 'security.logging.bruteforce.ip.attempts': '0' }).bruteforce).toMatchObject({ block: true, ipAttempts: 0 })
  })

  it('reject a block flag other than true or false, and a window too short to count in, naming file, key and value', () => {
    expect(() => parse({ 'security.logging.bruteforce.block': 'yes' })).toThrow(`authtrail: ${FILE}: key "security.logging.bruteforce.block" = "yes": expected "false"`)
    expect(() => parse({ 'security.logging.bruteforce.window.seconds': '5' })).toThrow(/key "security\.logging\.bruteforce\.window\.seconds" = "5": expected seconds: a whole number from 10/)
    expect(() => parse({ 'security.logging.bruteforce.user.attempts': '-1' })).toThrow(/key "security\.logging\.bruteforce\.user\.attempts" = "-1"/)
  })
})

import type { AuthtrailConfig } from './load-config.js'
import { ConfigError, CONFIG_KEYS } from './load-config.js'
import { createCheckpointSigner } from '../deliver/checkpoint-signature.js'
import type { CheckpointSigner } from '../deliver/checkpoint-signature.js'

/** Shortest chain key accepted: 32 characters, e.g. `openssl rand -hex 32` gives 64. */
export const MIN_CHAIN_KEY_LENGTH = 32

/**
 * The chain's HMAC key, from the environment variable the properties file names. Messages name the
 * file, the key and the variable, never the value.
 */
export function resolveChainKey(config: AuthtrailConfig, env: Readonly<Record<string, string | undefined>>): Buffer {
  const name = config.chain.keyEnv
  const value = env[name]
  const where = `${config.file}: key "${CONFIG_KEYS.chainKeyEnv}" = ${JSON.stringify(name)}`
  if (value === undefined || value === '') {
    throw new ConfigError(`authtrail: ${where}: the environment variable ${name} is not set; tamper evidence needs the chain key there (e.g. ${name}=$(openssl rand -hex 32)), the same on every instance and for authtrail verify`)
  }
  if (value.length < MIN_CHAIN_KEY_LENGTH) {
    throw new ConfigError(`authtrail: ${where}: the environment variable ${name} holds ${value.length} characters; a chain key needs at least ${MIN_CHAIN_KEY_LENGTH} (e.g. openssl rand -hex 32)`)
  }
  return Buffer.from(value, 'utf8')
}

/** The Ed25519 key that signs checkpoints, from the environment variable the properties file names. */
export function resolveCheckpointSigner(config: AuthtrailConfig, env: Readonly<Record<string, string | undefined>>): CheckpointSigner {
  const name = config.chain.signingKeyEnv
  const value = env[name]
  const where = `${config.file}: key "${CONFIG_KEYS.chainSigningKeyEnv}" = ${JSON.stringify(name)}`
  if (value === undefined || value.trim() === '') {
    throw new ConfigError(`authtrail: ${where}: the environment variable ${name} is not set; it must hold the Ed25519 private key that signs checkpoints (openssl genpkey -algorithm ed25519; give auditors the public key)`)
  }
  try {
    return createCheckpointSigner(value, `the environment variable ${name}`)
  } catch (err) {
    throw new ConfigError(`authtrail: ${where}: ${(err as Error).message.replace(/^authtrail: /, '')}`)
  }
}

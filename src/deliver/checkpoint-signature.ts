import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

/**
 * Checkpoints are signed with Ed25519 rather than an HMAC: `authtrail verify` needs the chain's HMAC key
 * to recompute link hashes, so whoever verifies could forge every link, but not a checkpoint without the
 * app's private key. An auditor checks checkpoints with the public key alone.
 */

/** What a checkpoint's signature covers. */
export interface CheckpointFields {
  readonly chainId: string
  readonly seq: number
  readonly hash: string
  /** Epoch ms. */
  readonly time: number
  readonly final: boolean
}

/** The exact text a checkpoint's signature covers, the same for the signer and for verify. */
export function checkpointMessage(fields: CheckpointFields): string {
  return ['authtrail-checkpoint-v1', fields.chainId, String(fields.seq), fields.hash, new Date(fields.time).toISOString(), fields.final ? 'final' : 'open'].join('\n')
}

/** Signs checkpoints with the app's Ed25519 private key; `keyId` names the public key that checks them. */
export interface CheckpointSigner {
  /** First 16 hex digits of the SHA-256 of the public key (SPKI DER): which key signed. */
  readonly keyId: string
  sign(message: string): string
}

/** Which key signed: a short fingerprint of an Ed25519 public key. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16)
}

/** A key from PEM text, or base64 of its DER (PKCS#8 private, SPKI public), so it fits in one environment line. */
function keyFrom(text: string, kind: 'private' | 'public'): KeyObject {
  const trimmed = text.trim()
  if (trimmed.includes('-----BEGIN')) return kind === 'private' ? createPrivateKey(trimmed) : createPublicKey(trimmed)
  const der = Buffer.from(trimmed, 'base64')
  return kind === 'private' ? createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) : createPublicKey({ key: der, format: 'der', type: 'spki' })
}

/**
 * Reads an Ed25519 private key. Throws a message saying what is wrong with it, never the key itself;
 * `where` names its source for the message.
 */
export function createCheckpointSigner(text: string, where: string): CheckpointSigner {
  let key: KeyObject
  try {
    key = keyFrom(text, 'private')
  } catch {
    throw new Error(`authtrail: ${where} is not a private key in PEM (or base64 PKCS#8 DER); create one with \`openssl genpkey -algorithm ed25519\``)
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`authtrail: ${where} is an ${key.asymmetricKeyType ?? 'unknown'} key; checkpoints are signed with Ed25519 (\`openssl genpkey -algorithm ed25519\`)`)
  const keyId = keyIdOf(createPublicKey(key))
  return { keyId, sign: (message) => sign(null, Buffer.from(message, 'utf8'), key).toString('base64') }
}

/** Reads an Ed25519 public key (PEM, or base64 SPKI DER) for checking checkpoints. */
export function readCheckpointPublicKey(text: string, where: string): KeyObject {
  let key: KeyObject
  try {
    key = keyFrom(text, 'public')
  } catch {
    throw new Error(`authtrail: ${where} is not a public key in PEM; derive it with \`openssl pkey -in checkpoint.pem -pubout\``)
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`authtrail: ${where} is an ${key.asymmetricKeyType ?? 'unknown'} key; checkpoints are signed with Ed25519`)
  return key
}

/** Whether `signature` (base64) is `publicKey`'s signature of the checkpoint. */
export function checkpointSignatureValid(publicKey: KeyObject, fields: CheckpointFields, signature: string): boolean {
  try {
    return verify(null, Buffer.from(checkpointMessage(fields), 'utf8'), publicKey, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}

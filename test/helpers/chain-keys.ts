import { generateKeyPairSync } from 'node:crypto'
import { createPostgresProcedureSink } from '../../src/deliver/postgres/postgres-procedure.js'
import { createChainedCalls } from '../../src/deliver/postgres/postgres-chain.js'
import type { SqlClient } from '../../src/deliver/sql-client.js'
import { createCheckpointSigner, readCheckpointPublicKey } from '../../src/deliver/checkpoint-signature.js'
import { createChainLanes } from '../../src/deliver/tamper-chain.js'
import type { Sink } from '../../src/types.js'

export const CHAIN_KEY = 'chain-key-0123456789abcdef0123456789abcdef'

/** A fresh Ed25519 key pair in PEM, as an operator would make it with openssl. */
export function checkpointKeys(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() }
}

export interface ChainedSinkOptions {
  readonly checkpointEvents?: number
  readonly warnings?: string[]
}

/** A sink delivering through `<proc>_chained`, as one app instance with chaining on would. */
export async function chainedSink(client: SqlClient, proc: string, privatePem: string, options: ChainedSinkOptions = {}): Promise<Sink> {
  const warn = (message: string) => options.warnings?.push(message)
  const lanes = createChainLanes({ key: Buffer.from(CHAIN_KEY), signer: createCheckpointSigner(privatePem, 'test key'), checkpointEvents: options.checkpointEvents ?? 5, checkpointMs: 60_000 }, warn)
  return createPostgresProcedureSink(client, proc, async () => {}, undefined, createChainedCalls(proc, lanes, warn))
}

export const publicKeyOf = (publicPem: string) => readCheckpointPublicKey(publicPem, 'test public key')

import type { AuthtrailConfig } from '../../config/load-config.js'
import { ConfigError, CONFIG_KEYS } from '../../config/load-config.js'
import { resolveChainKey, resolveCheckpointSigner } from '../../config/chain-keys.js'
import { createCheckpointSigner } from '../checkpoint-signature.js'
import type { Logger } from '../../logger.js'
import type { DescribedEvent } from '../../types.js'
import type { SqlClient } from '../sql-client.js'
import { isUnavailable } from '../sql-client.js'
import type { ChainLane, ChainLanes, PendingLinks, StoredRow } from '../tamper-chain.js'
import { createChainLanes, storedRowOf } from '../tamper-chain.js'
import { BATCH_ARGUMENTS, postgresProcedureExists } from './postgres-procedure.js'

/** The signature of `<procedure>_chained`: the batch's arrays, then the chain's links and an optional checkpoint. */
export const CHAINED_ARGUMENTS = [
  ...BATCH_ARGUMENTS,
  'uuid', 'bigint[]', 'text[]', 'text[]',
  'bigint', 'text', 'timestamp with time zone', 'text', 'text', 'boolean',
] as const

/** Delivers through `<procedure>_chained`, one chain lane per call in flight. */
export interface ChainedCalls {
  call(client: SqlClient, events: readonly DescribedEvent[]): Promise<void>
  /** Writes a final checkpoint for every idle chain; called before the connection closes. */
  finish(client: SqlClient): Promise<void>
}

function params(rows: readonly StoredRow[], links: PendingLinks): unknown[] {
  const checkpoint = links.checkpoint
  return [
    rows.map((r) => r.sessionContext),
    rows.map((r) => r.data),
    rows.map((r) => r.type),
    rows.map((r) => r.eventId),
    // Microseconds as the timestamptz literal PostgreSQL reads exactly.
    rows.map((r) => new Date(Number(BigInt(r.timeUs) / 1000n)).toISOString()),
    rows.map((r) => r.username),
    rows.map((r) => r.ip),
    rows.map((r) => r.sessionId),
    links.chainId,
    links.seqs.map(String),
    links.prevHashes,
    links.hashes,
    checkpoint ? String(checkpoint.seq) : null,
    checkpoint?.hash ?? null,
    checkpoint ? new Date(checkpoint.time).toISOString() : null,
    checkpoint?.keyId ?? null,
    checkpoint?.signature ?? null,
    checkpoint?.final ?? null,
  ]
}

/** Calls `<proc>_chained` with each call's rows and the links of the lane it takes from `lanes`. */
export function createChainedCalls(proc: string, lanes: ChainLanes, warn: (message: string) => void): ChainedCalls {
  const text =
    `CALL ${proc}_chained($1::xml[], $2::xml[], $3::varchar[], $4::uuid[], $5::timestamptz[], $6::text[], $7::text[], $8::text[], ` +
    `$9::uuid, $10::bigint[], $11::text[], $12::text[], $13::bigint, $14::text, $15::timestamptz, $16::text, $17::text, $18::boolean)`
  const run = async (client: SqlClient, lane: ChainLane, rows: readonly StoredRow[], links: PendingLinks): Promise<void> => {
    try {
      await client.query(text, params(rows, links))
    } catch (err) {
      // An unavailable database may have committed before the connection broke: that chain cannot go on.
      lanes.release(lane, isUnavailable(err) ? 'unknown' : 'refused')
      throw err
    }
    lanes.release(lane, 'stored')
  }
  return {
    async call(client, events) {
      const rows = events.map(storedRowOf)
      const lane = lanes.acquire()
      await run(client, lane, rows, lane.next(rows))
    },
    async finish(client) {
      for (const lane of lanes.takeIdle()) {
        const links = lane.finish()
        if (!links) continue
        await run(client, lane, [], links).catch((err: Error) =>
          warn(`could not write the final checkpoint of chain ${lane.chainId}: ${err.message}; verify will report its last links as an open tail`),
        )
      }
    },
  }
}

/**
 * What chaining needs, resolved from the properties file and the environment on the app's thread, so
 * that a missing or short key fails startup naming the file, key and variable. Plain data: it is handed
 * to the database thread, where the sink and its chains live.
 */
export interface ChainSettings {
  readonly key: Uint8Array
  /** The Ed25519 private key (PEM) that signs checkpoints, and where it came from, for messages. */
  readonly signingKey: string
  readonly signingKeyFrom: string
  readonly checkpointEvents: number
  readonly checkpointMs: number
  /** For messages: the variable the chain key came from, and the properties file. */
  readonly keyEnv: string
  readonly file: string
}

/** The chain settings when `security.logging.chain = on`, else undefined; throws a ConfigError for a bad key. */
export function resolveChainSettings(config: AuthtrailConfig, env: Readonly<Record<string, string | undefined>>): ChainSettings | undefined {
  if (!config.chain.enabled) return undefined
  const key = resolveChainKey(config, env)
  // Checked here for its message; the thread builds its own signer from the same text.
  resolveCheckpointSigner(config, env)
  return {
    key,
    signingKey: env[config.chain.signingKeyEnv]!,
    signingKeyFrom: `the environment variable ${config.chain.signingKeyEnv}`,
    checkpointEvents: config.chain.checkpointEvents,
    checkpointMs: config.chain.checkpointMs,
    keyEnv: config.chain.keyEnv,
    file: config.file,
  }
}

/**
 * The chained calls for `proc`. Fails startup when the database lacks `<procedure>_chained`: chaining
 * is never silently off when it was asked for.
 */
export async function openChainedCalls(client: SqlClient, proc: string, settings: ChainSettings, logger: Pick<Logger, 'info' | 'warn'>): Promise<ChainedCalls> {
  if (!(await postgresProcedureExists(client, `${proc}_chained`, CHAINED_ARGUMENTS))) {
    throw new ConfigError(
      `authtrail: ${settings.file}: key "${CONFIG_KEYS.chain}" = "on" needs the procedure ${proc}_chained(${CHAINED_ARGUMENTS.join(', ')}) in ${client.description}; deploy procedures/securitylogging.sql again, or set ${CONFIG_KEYS.chain} = off`,
    )
  }
  const policy = {
    key: Buffer.from(settings.key),
    signer: createCheckpointSigner(settings.signingKey, settings.signingKeyFrom),
    checkpointEvents: settings.checkpointEvents,
    checkpointMs: settings.checkpointMs,
  }
  logger.info(`tamper evidence on: every event is chained (HMAC key from $${settings.keyEnv}), checkpoints signed with key ${policy.signer.keyId} every ${policy.checkpointEvents} links or ${policy.checkpointMs / 1000} s`)
  return createChainedCalls(proc, createChainLanes(policy, logger.warn), logger.warn)
}

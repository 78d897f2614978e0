import { createHmac, randomUUID } from 'node:crypto'
import { toXmlChars } from '../describe/xml-text.js'
import type { DescribedEvent } from '../types.js'
import type { CheckpointSigner } from './checkpoint-signature.js'
import { checkpointMessage } from './checkpoint-signature.js'

/**
 * Tamper evidence for the audit table (docs/tamper-evidence.md). Each stored event gets a chain link:
 * `hash = HMAC-SHA256(key, prev_hash "\n" canonicalRow(row, chain, seq))`, computed here, where the key
 * lives, and inserted by the same procedure call that inserts the row. Chains are per delivery lane (one
 * per batch in flight), so concurrent connections and instances never wait on one another.
 */

/** prev_hash of a chain's first link. */
export const GENESIS_HASH = '0'.repeat(64)

/** The fields of an audit row that a link covers, as the database stores them. */
export interface StoredRow {
  readonly eventId: string
  /** The event's time in epoch microseconds (timestamptz precision), as decimal digits. */
  readonly timeUs: string
  readonly type: string
  readonly username: string
  readonly ip: string
  readonly sessionId: string
  readonly data: string
  readonly sessionContext: string
}

/**
 * The row as it will be stored. Text columns go through {@link toXmlChars}, like every XML value: a NUL
 * would make PostgreSQL refuse the whole batch, and a lone surrogate would be stored as U+FFFD, so the
 * hash must cover what the database keeps, not what JavaScript held.
 */
export function storedRowOf(described: DescribedEvent): StoredRow {
  const { event } = described
  return {
    eventId: event.id.toLowerCase(),
    timeUs: (BigInt(Math.trunc(event.time)) * 1000n).toString(),
    type: event.type,
    username: toXmlChars(event.username),
    ip: toXmlChars(event.ip),
    sessionId: toXmlChars(event.sessionId),
    data: described.data,
    sessionContext: described.sessionContext,
  }
}

/** Unambiguous text of a row at a chain position: a JSON array, so no field can spill into the next. */
export function canonicalRow(row: StoredRow, chainId: string, seq: number): string {
  return JSON.stringify(['authtrail-chain-v1', chainId, seq, row.eventId, row.timeUs, row.type, row.username, row.ip, row.sessionId, row.data, row.sessionContext])
}

/** The hash of a link: HMAC-SHA256 over the previous link's hash and the canonical row, hex. */
export function linkHash(key: Buffer, prevHash: string, canonical: string): string {
  return createHmac('sha256', key).update(prevHash).update('\n').update(canonical).digest('hex')
}

/** A signed statement that a chain reached `seq` with `hash`, so that truncating its tail shows. */
export interface Checkpoint {
  readonly seq: number
  readonly hash: string
  /** Epoch ms. */
  readonly time: number
  readonly keyId: string
  readonly signature: string
  /** The chain's last checkpoint, written when the chain is closed: no link may follow it. */
  readonly final: boolean
}

/** Links computed for one procedure call, not yet known to be stored. */
export interface PendingLinks {
  readonly chainId: string
  readonly seqs: readonly number[]
  readonly prevHashes: readonly string[]
  readonly hashes: readonly string[]
  readonly checkpoint: Checkpoint | undefined
}

/** What a chain is made with: the HMAC key, the checkpoint signer, and how often a checkpoint is due. */
export interface ChainPolicy {
  readonly key: Buffer
  readonly signer: CheckpointSigner
  /** A checkpoint at least every this many links. @defaultValue security.logging.chain.checkpoint.events (1000) */
  readonly checkpointEvents: number
  /** A checkpoint on the first call at least this long after the previous one. @defaultValue security.logging.chain.checkpoint.seconds (60) × 1000 */
  readonly checkpointMs: number
  readonly now?: () => number
}

/**
 * One chain, used by one procedure call at a time: `next(rows)` computes the links, then `commit()` once
 * the call stored them or `rollback()` once it was refused (so a refused event leaves no hole).
 */
export interface ChainLane {
  readonly chainId: string
  next(rows: readonly StoredRow[]): PendingLinks
  commit(): void
  rollback(): void
  /** The final checkpoint of the last link (no link may follow it), or undefined for a chain with no link. */
  finish(): PendingLinks | undefined
  /** Its final checkpoint is stored: nothing may follow it (verify would call it inserted). */
  readonly finished: boolean
}

/**
 * A new chain (its own random id, seq 0): links are computed for a call with `next`, kept with `commit`
 * once the call stored them, dropped with `rollback` otherwise; `finish` makes the final checkpoint.
 */
export function createChainLane(policy: ChainPolicy): ChainLane {
  const chainId = randomUUID()
  const now = policy.now ?? Date.now
  let seq = 0
  let hash = GENESIS_HASH
  let checkpointSeq = 0
  let checkpointAt = now()
  let pending: { links: PendingLinks; seq: number; hash: string } | undefined
  let finished = false

  const checkpoint = (at: number, atHash: string, final: boolean): Checkpoint => {
    const time = now()
    return { seq: at, hash: atHash, time, final, keyId: policy.signer.keyId, signature: policy.signer.sign(checkpointMessage({ chainId, seq: at, hash: atHash, time, final })) }
  }

  return {
    chainId,
    next(rows) {
      if (pending) throw new Error('authtrail: a chain lane was used by two calls at once')
      const seqs: number[] = []
      const prevHashes: string[] = []
      const hashes: string[] = []
      let at = seq
      let head = hash
      for (const row of rows) {
        at++
        prevHashes.push(head)
        head = linkHash(policy.key, head, canonicalRow(row, chainId, at))
        seqs.push(at)
        hashes.push(head)
      }
      const due = at - checkpointSeq >= policy.checkpointEvents || (at > checkpointSeq && now() - checkpointAt >= policy.checkpointMs)
      const links = { chainId, seqs, prevHashes, hashes, checkpoint: due && rows.length > 0 ? checkpoint(at, head, false) : undefined }
      pending = { links, seq: at, hash: head }
      return links
    },
    commit() {
      if (!pending) return
      seq = pending.seq
      hash = pending.hash
      if (pending.links.checkpoint) {
        checkpointSeq = pending.links.checkpoint.seq
        checkpointAt = pending.links.checkpoint.time
        finished = pending.links.checkpoint.final
      }
      pending = undefined
    },
    rollback() {
      pending = undefined
    },
    finish() {
      if (pending) throw new Error('authtrail: a chain lane was finished during a call')
      if (seq === 0) return undefined
      const links: PendingLinks = { chainId, seqs: [], prevHashes: [], hashes: [], checkpoint: checkpoint(seq, hash, true) }
      pending = { links, seq, hash }
      return links
    },
    get finished() {
      return finished
    },
  }
}

/** How a procedure call with a lane's links ended. */
export type CallOutcome = 'stored' | 'refused' | 'unknown'

/**
 * The chains of one sink: a lane per call in flight, taken from the idle ones or made anew. A call whose
 * outcome is unknown (the connection was lost, perhaps during commit) ends its chain: the next call
 * starts a new one rather than guess whether those links exist. Its events are retried, and show in
 * the new chain as duplicates if the lost call did commit.
 */
export interface ChainLanes {
  acquire(): ChainLane
  release(lane: ChainLane, outcome: CallOutcome): void
  /** Takes every idle lane, for final checkpoints at close. */
  takeIdle(): ChainLane[]
}

/** The lanes of one sink (see {@link ChainLanes}); `warn` hears of chains ended by an unknown outcome. */
export function createChainLanes(policy: ChainPolicy, warn: (message: string) => void): ChainLanes {
  const idle: ChainLane[] = []
  return {
    acquire: () => idle.pop() ?? createChainLane(policy),
    release(lane, outcome) {
      if (outcome === 'unknown') {
        lane.rollback()
        warn(`the outcome of a delivery on chain ${lane.chainId} is unknown (the connection was lost); that chain ends here and delivery goes on in a new one`)
        return
      }
      if (outcome === 'stored') lane.commit()
      else lane.rollback()
      // A chain closed by its final checkpoint is over: a call after the close starts a new one.
      if (!lane.finished) idle.push(lane)
    },
    takeIdle: () => idle.splice(0),
  }
}

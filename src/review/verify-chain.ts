import type { KeyObject } from 'node:crypto'
import { checkpointSignatureValid, keyIdOf } from '../deliver/checkpoint-signature.js'
import { canonicalRow, GENESIS_HASH, linkHash } from '../deliver/tamper-chain.js'
import type { Checkpoint, StoredRow } from '../deliver/tamper-chain.js'

/**
 * What `authtrail verify` reports (docs/tamper-evidence.md):
 * - `modified`: a row whose content no longer matches its link's hash, or a link that does not follow
 *   its predecessor (prev_hash differs);
 * - `deleted`: a link whose row is gone, a gap in a chain's seq, or a checkpoint naming links that are gone;
 * - `inserted`: a row that no link covers (written behind authtrail's back), or links after a chain's
 *   final checkpoint;
 * - `out-of-order`: within a chain, rows are inserted in seq order, so their ids increase with seq; a row
 *   whose id is lower than that of a row at an earlier seq of its chain was put back in another place;
 * - `checkpoint`: a signature that does not verify, a key that is not the auditor's, or a checkpoint hash
 *   that differs from its link's.
 */
export type FindingKind = 'modified' | 'deleted' | 'inserted' | 'out-of-order' | 'checkpoint'

/** One thing verify found wrong: what kind, where (chain, seq, row, event) and in words. */
export interface Finding {
  readonly kind: FindingKind
  readonly chainId?: string
  readonly seq?: number
  readonly rowId?: number
  readonly eventId?: string
  readonly detail: string
}

/** A chain link as stored, with the row it names (the one with its event id), if any. */
export interface LinkWithRow {
  readonly seq: number
  readonly eventId: string
  readonly prevHash: string
  readonly hash: string
  readonly duplicate: boolean
  readonly row: (StoredRow & { readonly id: number }) | undefined
}

/** A checkpoint as read back from securitylog_checkpoint. */
export type StoredCheckpoint = Checkpoint

/** What is known of a chain besides the links walked. */
export interface ChainContext {
  readonly chainId: string
  /** The nearest link before the first one walked, if any (a range may start mid-chain). */
  readonly predecessor: { readonly seq: number; readonly hash: string } | undefined
  readonly checkpoints: readonly StoredCheckpoint[]
  /** The chain's highest seq in the whole table; 0 when none of its links is left. */
  readonly maxSeq: number
}

/** What walking the chains counted: chains, links, rows, findings, and tails not yet under a checkpoint. */
export interface ChainWalkSummary {
  chains: number
  links: number
  /** Chains whose last links no checkpoint covers yet (a running or killed process): not a break. */
  openTails: Array<{ chainId: string; from: number; to: number }>
}

/**
 * Checks chains link by link, in seq order: `chain()` to start one, `link()` for each link, `end()`
 * after its last. Findings go to `report` as they are found, so a table of any size streams through.
 */
export function createChainWalk(key: Buffer, publicKey: KeyObject, report: (finding: Finding) => void) {
  const auditorKeyId = keyIdOf(publicKey)
  const summary: ChainWalkSummary = { chains: 0, links: 0, openTails: [] }
  let chain: ChainContext | undefined
  let expected = 1
  let prevHash = GENESIS_HASH
  let maxRow: { id: number; seq: number } | undefined
  let lastSeq = 0
  let bySeq = new Map<number, StoredCheckpoint>()

  const end = (): void => {
    if (!chain) return
    const chainId = chain.chainId
    let covered = 0
    let final: StoredCheckpoint | undefined
    for (const cp of chain.checkpoints) {
      if (cp.keyId !== auditorKeyId) report({ kind: 'checkpoint', chainId, seq: cp.seq, detail: `checkpoint signed by key ${cp.keyId}, not by the public key given (${auditorKeyId})` })
      else if (!checkpointSignatureValid(publicKey, { chainId, seq: cp.seq, hash: cp.hash, time: cp.time, final: cp.final }, cp.signature)) {
        report({ kind: 'checkpoint', chainId, seq: cp.seq, detail: 'checkpoint signature does not verify: the checkpoint was altered or forged' })
      }
      covered = Math.max(covered, cp.seq)
      if (cp.final && (!final || cp.seq > final.seq)) final = cp
    }
    // One finding for the furthest checkpoint: those before it name a part of the same missing links.
    if (covered > chain.maxSeq) {
      report({
        kind: 'deleted',
        chainId,
        seq: covered,
        detail: chain.maxSeq === 0
          ? `a checkpoint says the chain reached seq ${covered}, but none of its links is left: links 1-${covered} and their rows are gone`
          : `a checkpoint says the chain reached seq ${covered}, but it ends at seq ${chain.maxSeq}: links ${chain.maxSeq + 1}-${covered} are gone`,
      })
    }
    if (final && chain.maxSeq > final.seq) {
      report({ kind: 'inserted', chainId, seq: final.seq + 1, detail: `links ${final.seq + 1}-${chain.maxSeq} follow the chain's final checkpoint at seq ${final.seq}` })
    } else if (!final && covered < lastSeq) {
      summary.openTails.push({ chainId, from: covered + 1, to: lastSeq })
    }
    chain = undefined
  }

  return {
    chain(context: ChainContext): void {
      end()
      chain = context
      summary.chains++
      expected = (context.predecessor?.seq ?? 0) + 1
      prevHash = context.predecessor?.hash ?? GENESIS_HASH
      maxRow = undefined
      lastSeq = 0
      bySeq = new Map(context.checkpoints.map((cp) => [cp.seq, cp]))
    },
    link(link: LinkWithRow): void {
      if (!chain) throw new Error('authtrail: link() before chain()')
      const chainId = chain.chainId
      const at = { chainId, seq: link.seq, eventId: link.eventId }
      summary.links++
      if (link.seq > expected) {
        report({ ...at, kind: 'deleted', seq: expected, detail: expected === link.seq - 1 ? `link ${expected} is gone (seq gap)` : `links ${expected}-${link.seq - 1} are gone (seq gap)` })
      } else if (link.prevHash !== prevHash) {
        report({ ...at, kind: 'modified', detail: `the link does not follow link ${link.seq - 1}: its prev_hash differs (a link was altered or put in its place)` })
      }
      if (!link.row) {
        report({ ...at, kind: 'deleted', detail: `the row of event ${link.eventId} is gone` })
      } else if (!link.duplicate) {
        const { id } = link.row
        if (linkHash(key, link.prevHash, canonicalRow(link.row, chainId, link.seq)) !== link.hash) {
          report({ ...at, kind: 'modified', rowId: id, detail: `row ${id} no longer matches its link's hash: its content was changed` })
        }
        if (maxRow && id < maxRow.id) {
          report({ ...at, kind: 'out-of-order', rowId: id, detail: `row ${id} (seq ${link.seq}) has a lower id than row ${maxRow.id} (seq ${maxRow.seq}), which the chain stored before it` })
        }
        if (!maxRow || id > maxRow.id) maxRow = { id, seq: link.seq }
      }
      const checkpoint = bySeq.get(link.seq)
      if (checkpoint && checkpoint.hash !== link.hash) {
        report({ ...at, kind: 'checkpoint', detail: `the checkpoint at seq ${link.seq} names another hash than the link: the link or the checkpoint was altered` })
      }
      prevHash = link.hash
      expected = link.seq + 1
      lastSeq = link.seq
    },
    end,
    summary: (): ChainWalkSummary => summary,
  }
}

import type { KeyObject } from 'node:crypto'
import { siblingTable } from '../deliver/sibling-table.js'
import type { SqlClient } from '../deliver/sql-client.js'
import { createChainWalk } from './verify-chain.js'
import type { ChainWalkSummary, Finding, LinkWithRow, StoredCheckpoint } from './verify-chain.js'

/** What verify checks with: the chain's HMAC key, the checkpoints' public key, and the range to walk. */
export interface VerifyOptions {
  /** The chain's HMAC key. */
  readonly key: Buffer
  /** The Ed25519 public key checkpoints must be signed with. */
  readonly publicKey: KeyObject
  /** ISO 8601: links recorded at or after it, rows of events at or after it. */
  readonly since?: string
  /** ISO 8601: links recorded before it, rows of events before it. */
  readonly until?: string
  /** Links or rows read per query. @defaultValue 2000 */
  readonly pageSize?: number
}

/** The totals of a verify run, for its closing line. */
export interface VerifySummary extends ChainWalkSummary {
  /** Audit rows looked at for a missing link. */
  rows: number
  findings: number
}

const NO_CHAIN = '00000000-0000-0000-0000-000000000000'
const TIME_US = (column: string) => `((extract(epoch FROM ${column}) * 1000000)::bigint)::text`

/**
 * Walks every chain of the audit table (PostgreSQL or the embedded store) in seq order, in keyset pages,
 * checks the checkpoints of chains that have no link left, and then looks for rows no link covers; each finding goes to `report` as it is found. A range selects
 * links by the time they were recorded (contiguous within a chain) and rows by their event time.
 */
export async function verifyAudit(client: SqlClient, table: string, options: VerifyOptions, report: (finding: Finding) => void): Promise<VerifySummary> {
  if (client.dialect !== 'postgres') throw new Error(`authtrail: verify reads PostgreSQL and the embedded store only; ${client.description} is MariaDB, where authtrail keeps no chain`)
  const chainTable = siblingTable('postgres', table, 'securitylog_chain')
  const checkpointTable = siblingTable('postgres', table, 'securitylog_checkpoint')
  const pageSize = options.pageSize ?? 2000
  let findings = 0
  const walk = createChainWalk(options.key, options.publicKey, (finding) => {
    findings++
    report(finding)
  })

  const range = (column: string, first: number): { sql: string; params: unknown[] } => {
    const parts: string[] = []
    const params: unknown[] = []
    if (options.since !== undefined) {
      params.push(options.since)
      parts.push(`${column} >= $${first + params.length - 1}::timestamptz`)
    }
    if (options.until !== undefined) {
      params.push(options.until)
      parts.push(`${column} < $${first + params.length - 1}::timestamptz`)
    }
    return { sql: parts.map((p) => ` AND ${p}`).join(''), params }
  }

  const linkRange = range('c.recorded_at', 4)
  const linksText =
    `SELECT c.chain_id::text AS chain_id, c.seq::text AS seq, c.event_id::text AS event_id, c.prev_hash, c.hash, c.duplicate,
            r.id::text AS row_id, r.event_id::text AS row_event_id, ${TIME_US('r.time')} AS time_us, r.type, r.username, r.ip, r.session_id,
            r.data::text AS data, r.session_context::text AS session_context
       FROM ${chainTable} c
       LEFT JOIN LATERAL (SELECT * FROM ${table} s WHERE s.event_id = c.event_id ORDER BY (s.time = c.time) DESC, s.id LIMIT 1) r ON true
      WHERE (c.chain_id, c.seq) > ($1::uuid, $2::bigint)${linkRange.sql}
      ORDER BY c.chain_id, c.seq LIMIT $3`
  let cursor: [string, string] = [NO_CHAIN, '0']
  let current: string | undefined
  for (;;) {
    const page = await client.query<Record<string, string | boolean | null>>(linksText, [...cursor, pageSize, ...linkRange.params])
    for (const row of page) {
      const chainId = String(row.chain_id)
      const seq = Number(row.seq)
      if (chainId !== current) {
        current = chainId
        walk.chain(await chainContext(client, chainTable, checkpointTable, chainId, seq))
      }
      walk.link(linkOf(row, seq))
      cursor = [chainId, String(row.seq)]
    }
    if (page.length < pageSize) break
  }
  // A chain whose rows and links were all deleted has no link to walk; its checkpoints still say how far it went.
  const bare = range('k.time', 1)
  const bareText =
    `SELECT DISTINCT k.chain_id::text AS chain_id FROM ${checkpointTable} k
      WHERE NOT EXISTS (SELECT 1 FROM ${chainTable} c WHERE c.chain_id = k.chain_id${range('c.recorded_at', 1).sql})${bare.sql}
      ORDER BY 1`
  for (const { chain_id: chainId } of await client.query<{ chain_id: string }>(bareText, bare.params)) {
    walk.chain(await chainContext(client, chainTable, checkpointTable, chainId, 1))
  }
  walk.end()

  // Rows that no link covers. A row whose time was edited is its link's "modified" row, not a new one.
  const rowRange = range('r.time', 3)
  const rowsText =
    `SELECT r.id::text AS id, r.event_id::text AS event_id FROM ${table} r
      WHERE r.id > $1::bigint${rowRange.sql}
        AND NOT EXISTS (SELECT 1 FROM ${chainTable} l WHERE l.event_id = r.event_id AND NOT l.duplicate
              AND (l.time = r.time OR NOT EXISTS (SELECT 1 FROM ${table} r2 WHERE r2.event_id = l.event_id AND r2.time = l.time)))
      ORDER BY r.id LIMIT $2`
  let lastId = '-1'
  for (;;) {
    const page = await client.query<{ id: string; event_id: string | null }>(rowsText, [lastId, pageSize, ...rowRange.params])
    for (const row of page) {
      findings++
      report({ kind: 'inserted', rowId: Number(row.id), ...(row.event_id ? { eventId: row.event_id } : {}), detail: `row ${row.id} is covered by no chain link: it was not stored through authtrail's chained procedure` })
      lastId = row.id
    }
    if (page.length < pageSize) break
  }
  const countRange = range('r.time', 1)
  const [counted] = await client.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table} r WHERE true${countRange.sql}`, countRange.params)
  return { ...walk.summary(), rows: Number(counted?.n ?? 0), findings }
}

function linkOf(row: Record<string, string | boolean | null>, seq: number): LinkWithRow {
  return {
    seq,
    eventId: String(row.event_id),
    prevHash: String(row.prev_hash),
    hash: String(row.hash),
    duplicate: row.duplicate === true,
    row: row.row_id === null
      ? undefined
      : {
          id: Number(row.row_id),
          eventId: String(row.row_event_id),
          timeUs: String(row.time_us),
          type: String(row.type),
          username: String(row.username),
          ip: String(row.ip),
          sessionId: String(row.session_id),
          data: String(row.data),
          sessionContext: String(row.session_context),
        },
  }
}

async function chainContext(client: SqlClient, chainTable: string, checkpointTable: string, chainId: string, firstSeq: number) {
  const [predecessor] = await client.query<{ seq: string; hash: string }>(`SELECT seq::text AS seq, hash FROM ${chainTable} WHERE chain_id = $1::uuid AND seq < $2::bigint ORDER BY seq DESC LIMIT 1`, [chainId, firstSeq])
  const [max] = await client.query<{ seq: string }>(`SELECT max(seq)::text AS seq FROM ${chainTable} WHERE chain_id = $1::uuid`, [chainId])
  const checkpoints = await client.query<{ seq: string; hash: string; time_ms: string; key_id: string; signature: string; final: boolean }>(
    `SELECT seq::text AS seq, hash, (extract(epoch FROM time) * 1000)::bigint::text AS time_ms, key_id, signature, final FROM ${checkpointTable} WHERE chain_id = $1::uuid AND seq >= $2::bigint ORDER BY seq`,
    [chainId, firstSeq],
  )
  return {
    chainId,
    predecessor: predecessor ? { seq: Number(predecessor.seq), hash: predecessor.hash } : undefined,
    maxSeq: max?.seq == null ? 0 : Number(max.seq),
    checkpoints: checkpoints.map((cp): StoredCheckpoint => ({ seq: Number(cp.seq), hash: cp.hash, time: Number(cp.time_ms), keyId: cp.key_id, signature: cp.signature, final: cp.final === true })),
  }
}

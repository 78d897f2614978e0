import { createHash, createHmac } from 'node:crypto'

/**
 * Where failed-login counts and lockouts are shared: the audit database (every instance logging there
 * sees every instance's failures), or this process's memory. Keys are `u:` or `i:` and a SHA-256 of the
 * username or address, so neither a name nor its length reaches the table.
 */
export interface AttemptStore {
  readonly description: string
  sync(request: SyncRequest): Promise<SyncResult>
  close(): Promise<void>
}

/** One exchange with the store: this instance's new failures and resets, and what it wants to know back. */
export interface SyncRequest {
  /** Epoch ms, the caller's clock (every instance buckets by its own). */
  readonly now: number
  /** Failures since the last sync, per key and bucket start (epoch ms). */
  readonly deltas: ReadonlyArray<{ readonly key: string; readonly bucket: number; readonly count: number }>
  /** Keys whose counts the caller wants back. */
  readonly watch: readonly string[]
  /** Keys whose counts start again from zero (a successful login). */
  readonly resets: readonly string[]
  /** Counts are summed over buckets starting at or after this. */
  readonly windowStart: number
  /** A key whose count reaches its scope's threshold is locked out until now + blockMs, if it is not already. */
  readonly thresholds: { readonly u: number; readonly i: number }
  readonly blockMs: number
  /** Lockouts that started at or after this are returned. */
  readonly blocksSince: number
}

/** What the store answers to a {@link SyncRequest}. */
export interface SyncResult {
  /** Failures in the window per watched key, every instance's. */
  readonly counts: ReadonlyMap<string, number>
  /** Lockouts this call created (exactly one caller creates each), with the count that made them. */
  readonly created: ReadonlyArray<{ readonly key: string; readonly attempts: number; readonly until: number }>
  /** Lockouts in force that started since `blocksSince`, whoever created them. */
  readonly blocks: ReadonlyArray<{ readonly key: string; readonly since: number; readonly until: number }>
}

/**
 * The store key of a username or address: an HMAC under `secret` (authtrail's session key), a plain
 * SHA-256 without one. Names are counted as typed, and a user who types the password into both fields
 * would otherwise leave an unsalted hash of it in a table anyone with read access could crack.
 */
export function attemptKey(scope: 'user' | 'ip', value: string, secret: Buffer = Buffer.alloc(0)): string {
  const digest = secret.length > 0 ? createHmac('sha256', secret) : createHash('sha256')
  return `${scope === 'user' ? 'u' : 'i'}:${digest.update(value).digest('hex').slice(0, 40)}`
}

/** The threshold that applies to a store key. */
export function thresholdOf(key: string, thresholds: SyncRequest['thresholds']): number {
  return key.startsWith('u:') ? thresholds.u : thresholds.i
}

/** The store of a process without an audit database (a script procedure): nothing is shared. */
export function createMemoryAttemptStore(): AttemptStore {
  const buckets = new Map<string, Map<number, number>>()
  const blocks = new Map<string, { since: number; until: number }>()
  return {
    description: 'this process\'s memory',
    async sync(request) {
      for (const key of request.resets) buckets.delete(key)
      for (const { key, bucket, count } of request.deltas) {
        const of = buckets.get(key) ?? new Map<number, number>()
        of.set(bucket, (of.get(bucket) ?? 0) + count)
        buckets.set(key, of)
      }
      const counts = new Map<string, number>()
      // A Set: a spray of random names makes tens of thousands of watched keys.
      const watched = new Set(request.watch)
      for (const [key, of] of buckets) {
        let n = 0
        for (const [bucket, count] of of) {
          if (bucket >= request.windowStart) n += count
          else of.delete(bucket)
        }
        if (of.size === 0) buckets.delete(key)
        if (watched.has(key)) counts.set(key, n)
      }
      const created: Array<{ key: string; attempts: number; until: number }> = []
      for (const [key, n] of counts) {
        const threshold = thresholdOf(key, request.thresholds)
        const current = blocks.get(key)
        if (threshold === 0 || n < threshold || (current && current.until > request.now)) continue
        const until = request.now + request.blockMs
        blocks.set(key, { since: request.now, until })
        buckets.delete(key)
        counts.set(key, 0)
        created.push({ key, attempts: n, until })
      }
      for (const [key, block] of blocks) if (block.until <= request.now) blocks.delete(key)
      return { counts, created, blocks: [...blocks].filter(([, b]) => b.since >= request.blocksSince).map(([key, b]) => ({ key, ...b })) }
    },
    close: async () => {},
  }
}

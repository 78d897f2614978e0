import type { BruteForceSettings } from '../config/load-config.js'
import type { AuditEvent } from '../types.js'
import type { AttemptStore } from './attempt-store.js'
import { attemptKey } from './attempt-store.js'
import { detachedEvent, NO_USER } from './request-facts.js'

/** Options of {@link createBruteForceGuard}: the security.logging.bruteforce.* settings, and where to share and record. */
export interface BruteForceOptions extends BruteForceSettings {
  readonly store: AttemptStore
  /** Keys the store's hashes of names and addresses (authtrail's session key); none: plain SHA-256. */
  readonly secret?: Buffer
  /** Records a LOCKOUT. */
  readonly record: (event: AuditEvent) => void
  readonly warn: (key: string, message: string) => void
  readonly now?: () => number
}

/** A lockout in force for an attempt. */
export interface Lockout {
  readonly scope: 'user' | 'ip'
  /** Epoch ms. */
  readonly until: number
}

/**
 * Counts failed logins per username and per address and turns a run of them into a LOCKOUT. Nothing on
 * the login path waits for the database: failures are counted in memory at once, and every `syncMs` the
 * counts are exchanged with the store (the audit database, shared by every instance), which also decides
 * which instance records each LOCKOUT. What an instance knows of the others' failures is at most one
 * sync old (docs/brute-force.md).
 */
export interface BruteForceGuard {
  /** The lockout refusing this attempt, if blocking is on and the username or address is locked out. */
  blocked(username: string, ip: string): Lockout | undefined
  /**
   * A failed login of `username` (as typed: counted before the password is scrubbed out of it, or a
   * guess equal to the name would count for "[redacted]") from `ip`; `shown` is the name a LOCKOUT
   * records, scrubbed of the password. @defaultValue shown: `username`
   */
  failed(username: string, ip: string, time: number, shown?: string): void
  /** A successful login: how many failures of this username were counted before it (they are then forgotten). */
  succeeded(username: string): number
  /** Exchanges counts now (tests, shutdown). */
  sync(): Promise<void>
  /** Stops the timer after a last exchange. */
  stop(): Promise<void>
}

interface Counter {
  readonly scope: 'user' | 'ip'
  readonly value: string
  /** The value as a LOCKOUT records it: a username scrubbed of the last attempt's password. */
  shown: string
  /** Every instance's failures in the window as of the last sync (this one's included). */
  synced: number
  /** This instance's failures since the last sync, per bucket start. */
  pending: Map<number, number>
  /** Failures handed to a sync that has not answered yet: still counted, or a burst would slip past. */
  inFlight: number
  lastSeen: number
  /** The other half of the last failure: the address for a user, the username for an address. */
  other: string
}

/** Counters kept at most; past it the least recently seen are forgotten (a spray of random names). */
const MAX_COUNTERS = 50_000
/** Buckets per window: the window is counted in tenths, so a failure leaves it up to a tenth early. */
const BUCKETS_PER_WINDOW = 10

/**
 * Starts counting failed logins (see {@link BruteForceGuard}); its timer exchanges counts with
 * `options.store` every `syncMs` until {@link BruteForceGuard.stop}.
 */
export function createBruteForceGuard(options: BruteForceOptions): BruteForceGuard {
  const now = options.now ?? Date.now
  const bucketMs = Math.max(1000, Math.floor(options.windowMs / BUCKETS_PER_WINDOW))
  const counters = new Map<string, Counter>()
  const lockouts = new Map<string, number>()
  let resets: string[] = []
  let blocksSince = 0
  let running: Promise<void> | undefined
  let again = false

  const threshold = (scope: 'user' | 'ip') => (scope === 'user' ? options.userAttempts : options.ipAttempts)
  /** Store keys already hashed: the same users and addresses come back attempt after attempt. */
  const keys = new Map<string, string>()
  const keyOf = (scope: 'user' | 'ip', value: string): string => {
    const plain = `${scope}\n${value}`
    let key = keys.get(plain)
    if (key === undefined) {
      if (keys.size >= MAX_COUNTERS) keys.clear()
      key = attemptKey(scope, value, options.secret)
      keys.set(plain, key)
    }
    return key
  }
  const count = (c: Counter) => {
    let n = c.synced + c.inFlight
    for (const k of c.pending.values()) n += k
    return n
  }
  const lockedUntil = (key: string, at: number): number | undefined => {
    const until = lockouts.get(key)
    return until !== undefined && until > at ? until : undefined
  }

  const lockoutEvent = (c: Counter, attempts: number, until: number): AuditEvent => {
    const user = c.scope === 'user' ? { ...NO_USER, username: c.shown } : NO_USER
    const ip = c.scope === 'ip' ? c.value : c.other
    return { ...detachedEvent('LOCKOUT', now(), '', user, ip, ''), lockout: { scope: c.scope, attempts, windowSeconds: options.windowMs / 1000, until, enforced: options.block } }
  }

  const exchange = async (): Promise<void> => {
    const at = now()
    const deltas: Array<{ key: string; bucket: number; count: number }> = []
    /** What each counter handed to this sync, with the counter itself: it may be evicted meanwhile. */
    const taken = new Map<string, { readonly counter: Counter; readonly pending: Map<number, number> }>()
    const watch: string[] = []
    for (const [key, c] of counters) {
      if (c.lastSeen < at - options.windowMs && c.pending.size === 0) {
        counters.delete(key)
        continue
      }
      for (const [bucket, n] of c.pending) {
        deltas.push({ key, bucket, count: n })
        c.inFlight += n
      }
      taken.set(key, { counter: c, pending: c.pending })
      c.pending = new Map()
      watch.push(key)
    }
    const reset = resets
    resets = []
    // Blocking needs the others' lockouts even while this instance sees no failure; recording alone does not.
    if (deltas.length === 0 && watch.length === 0 && reset.length === 0 && !options.block) return
    try {
      const result = await options.store.sync({
        now: at, deltas, watch, resets: reset, windowStart: at - options.windowMs, blockMs: options.blockMs, blocksSince: blocksSince === 0 ? 0 : blocksSince - 10_000,
        thresholds: { u: options.userAttempts, i: options.ipAttempts },
      })
      for (const [key, { counter: c, pending }] of taken) {
        c.synced = result.counts.get(key) ?? 0
        for (const n of pending.values()) c.inFlight -= n
      }
      for (const { key, attempts, until } of result.created) {
        lockouts.set(key, until)
        // This instance created the lockout, so it alone records it: from the counter it sent, even if
        // a spray of other names has pushed that counter out since.
        const c = taken.get(key)?.counter ?? counters.get(key)
        if (c) options.record(lockoutEvent(c, attempts, until))
      }
      for (const { key, until } of result.blocks) lockouts.set(key, until)
      blocksSince = at
      for (const [key, until] of lockouts) if (until <= at) lockouts.delete(key)
    } catch (err) {
      // Fail open: this instance keeps its own count. Failures the store did not take are sent again at
      // the next sync; those it took (it failed later on) are not, or they would be counted twice.
      const applied = (err as { applied?: { deltas?: boolean; resets?: boolean } }).applied ?? {}
      for (const { counter: c, pending } of taken.values()) {
        for (const [bucket, n] of pending) {
          if (!applied.deltas) c.pending.set(bucket, (c.pending.get(bucket) ?? 0) + n)
          else c.synced += n
          c.inFlight -= n
        }
      }
      if (!applied.resets) resets.push(...reset)
      options.warn('bruteforce:sync', `could not share failed-login counts through ${options.store.description}: ${(err as Error).message}; each instance counts its own until it can`)
    }
  }

  const sync = (): Promise<void> => {
    if (running) {
      again = true
      return running
    }
    running = exchange().finally(() => {
      running = undefined
      if (again) {
        again = false
        void sync()
      }
    })
    return running
  }
  const timer = setInterval(() => void sync(), options.syncMs).unref()

  const counter = (scope: 'user' | 'ip', value: string, at: number, other: string, shown = value): Counter => {
    const key = keyOf(scope, value)
    let c = counters.get(key)
    if (!c) {
      if (counters.size >= MAX_COUNTERS) counters.delete(counters.keys().next().value as string)
      c = { scope, value, shown, synced: 0, pending: new Map(), inFlight: 0, lastSeen: at, other }
    } else {
      // Re-inserted so that Map order is least recently seen first.
      counters.delete(key)
    }
    counters.set(key, c)
    c.lastSeen = at
    c.other = other
    // A name the password did not change is kept: "[redacted]" tells an auditor nothing.
    if (c.shown !== value) c.shown = shown
    const bucket = Math.floor(at / bucketMs) * bucketMs
    c.pending.set(bucket, (c.pending.get(bucket) ?? 0) + 1)
    if (count(c) >= threshold(scope) && lockedUntil(key, at) === undefined) {
      // Refused here at once; the store then decides which instance records the LOCKOUT.
      if (options.block) lockouts.set(key, at + options.blockMs)
      void sync()
    }
    return c
  }

  return {
    blocked(username, ip) {
      if (!options.block) return undefined
      const at = now()
      for (const [scope, value] of [['user', username], ['ip', ip]] as const) {
        if (value === '' || threshold(scope) === 0) continue
        const until = lockedUntil(keyOf(scope, value), at)
        if (until !== undefined) return { scope, until }
      }
      return undefined
    },
    failed(username, ip, time, shown = username) {
      if (options.userAttempts > 0 && username !== '') counter('user', username, time, ip, shown)
      if (options.ipAttempts > 0 && ip !== '') counter('ip', ip, time, username)
    },
    succeeded(username) {
      if (options.userAttempts === 0 || username === '') return 0
      const key = keyOf('user', username)
      const c = counters.get(key)
      const before = c ? count(c) : 0
      counters.delete(key)
      // Reset in the shared store even without a local count: the failures may have been another instance's.
      resets.push(key)
      return before
    },
    sync,
    async stop() {
      clearInterval(timer)
      await sync()
      // A sync asked for while one ran starts when it ends: its LOCKOUT must come before the outbox closes.
      while (running) await running
      await options.store.close()
    },
  }
}

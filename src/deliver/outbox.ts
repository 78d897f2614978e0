import type { AuditEvent, Sink } from '../types.js'
import { DeliveryError } from '../types.js'
import type { Logger } from '../logger.js'

/** Retry policy of the outbox. */
export interface RetryOptions {
  /** First delay after a failure. @defaultValue 100 */
  readonly initialDelayMs?: number
  /** Longest delay between two tries. @defaultValue 30000 */
  readonly maxDelayMs?: number
  /**
   * Tries for an event that the procedure itself rejects (a "poison" event) before it is parked.
   * A sink that is down altogether is retried without limit: those events are not at fault.
   * @defaultValue 8
   */
  readonly maxAttempts?: number
}

export interface OutboxOptions {
  /** Takes events as they were captured; describing them is the sink's work, wherever it runs. */
  readonly sink: Sink
  readonly logger: Logger
  /** Most events handed to the sink at once. @defaultValue 100 */
  readonly maxBatch?: number
  /**
   * How long the first event of a batch waits for others to share its round trip: a batch goes out at
   * `maxBatch` events or after this delay, whichever comes first. @defaultValue 0 (the next turn of the event loop)
   */
  readonly flushDelayMs?: number
  /**
   * Batches the sink may have in flight at once (one per pooled connection); above 1, batches may be
   * stored out of order, which the audit table's time column makes harmless. @defaultValue 1
   */
  readonly concurrency?: number
  readonly retry?: RetryOptions
  /** Told the ids of events the sink has stored, so the spool can mark them done. */
  readonly onStored?: (ids: string[]) => void
  /**
   * Where events beyond `maxQueued` wait: spooled events are then not kept in memory but read back
   * in order when the backlog drains, so a long outage grows the spool, not the heap.
   */
  readonly overflow?: {
    readFrom(cursor: number, limit: number, skip: ReadonlySet<string>): { events: AuditEvent[]; cursor: number }
  }
  /** Most events kept in memory when `overflow` is given. @defaultValue 10000 */
  readonly maxQueued?: number
}

/** An event the procedure kept rejecting; kept in memory and shown to the admin, never dropped. */
export interface ParkedEvent {
  readonly event: AuditEvent
  readonly error: string
  readonly attempts: number
}

/** What the outbox is doing, for health checks and tests. */
export interface OutboxMetrics {
  /** Events waiting, including those being retried and those waiting in the spool only. */
  readonly queued: number
  /** Of those, the events held in memory (at most maxQueued while the spool takes the rest). */
  readonly inMemory: number
  /** Events handed to the sink and not yet acknowledged. */
  readonly inFlight: number
  readonly delivered: number
  /** Failed deliveries so far (each failed batch counts once). */
  readonly sinkErrors: number
  readonly parked: number
  /** Epoch ms of the oldest event not yet stored, if any. */
  readonly oldestPendingTime: number | undefined
  readonly lastError: string | undefined
}

/**
 * Holds events between capture and the sink so that a login never waits for the database.
 *
 * A batch opens on the first event and goes at `maxBatch` events or after `flushDelayMs`, whichever
 * comes first: under load one round trip carries many events, at low load a single event goes out
 * promptly. Up to `concurrency` batches are in flight. A sink that fails as a whole pauses everything
 * (backoff with jitter); an event the sink refuses waits on its own clock and is parked after
 * `maxAttempts`. After {@link Outbox.close} no event is accepted and what is queued goes at once.
 */
export interface Outbox {
  /**
   * Queues an event; never throws, never waits. `spooledAt` is where the spool holds it: such an event
   * may wait in the spool instead of memory when the outbox is full.
   */
  enqueue(event: AuditEvent, spooledAt?: number): void
  /** Resolves once everything queued so far is stored or parked. */
  flush(): Promise<void>
  /** Flushes for at most `timeoutMs`, then closes the sink; says how many events were left undelivered. */
  close(timeoutMs?: number): Promise<void>
  metrics(): OutboxMetrics
  parked(): readonly ParkedEvent[]
}

interface Entry {
  readonly event: AuditEvent
  attempts: number
  /** Epoch ms before which this entry is not retried (poison-event backoff). */
  notBefore: number
  /** Epoch ms it was queued, for the batch's flush delay. */
  readonly enqueuedAt: number
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return code === undefined ? err.message : `${String(code)}: ${err.message}`
  }
  return String(err)
}

/** Exponential backoff with "equal jitter": half fixed, half random, so instances do not retry in step. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + (random() * ceiling) / 2)
}

export function createOutbox(options: OutboxOptions): Outbox {
  const { sink, logger } = options
  const maxBatch = options.maxBatch ?? 100
  const flushDelayMs = options.flushDelayMs ?? 0
  const concurrency = options.concurrency ?? 1
  const initialDelayMs = options.retry?.initialDelayMs ?? 100
  const maxDelayMs = options.retry?.maxDelayMs ?? 30_000
  const maxAttempts = options.retry?.maxAttempts ?? 8

  let queue: Entry[] = []
  const maxQueued = options.maxQueued ?? 10_000
  /** Events waiting in the spool only, from byte `spillCursor` of its file on. */
  let spilled = 0
  let spillCursor = 0
  /** Ids handed to the sink and not yet answered, so a refill does not read them back. */
  const inFlightIds = new Set<string>()
  const parkedEvents: ParkedEvent[] = []
  /** close() was called: no new events, and what is queued goes without waiting for a batch to fill. */
  let closed = false
  /** close() gave up and closed the sink: nothing may be sent any more. */
  let sinkClosed = false
  /** The next pump, and when it is due. */
  let pending: { readonly at: number; readonly cancel: () => void } | undefined
  /** Batches handed to the sink and not yet answered. */
  let running = 0
  let inFlight = 0
  /** While the sink is down, nothing is sent before this time. */
  let pausedUntil = 0
  let sinkFailures = 0
  let delivered = 0
  let sinkErrors = 0
  let lastError: string | undefined
  let waiters: Array<() => void> = []

  const settleWaiters = (): void => {
    if (queue.length > 0 || inFlight > 0 || running > 0 || spilled > 0) return
    const ready = waiters
    waiters = []
    for (const resolve of ready) resolve()
  }

  const cancelPump = (): void => {
    pending?.cancel()
    pending = undefined
  }

  /** Runs pump() after `delayMs`, unless one is already due sooner. */
  const requestPump = (delayMs: number): void => {
    const at = Date.now() + delayMs
    if (sinkClosed || (pending && pending.at <= at)) return
    cancelPump()
    // Unref'd like pino's timers: a pending retry alone does not keep the process alive;
    // close() is what drains on shutdown. Immediate for "now", so events of one tick share a batch.
    if (delayMs > 0) {
      const handle = setTimeout(pump, delayMs).unref()
      pending = { at, cancel: () => clearTimeout(handle) }
    } else {
      const handle = setImmediate(pump)
      pending = { at, cancel: () => clearImmediate(handle) }
    }
  }

  const stored = (ids: string[]): void => {
    if (ids.length === 0 || !options.onStored) return
    try {
      options.onStored(ids)
    } catch (err) {
      logger.error(`could not mark ${ids.length} stored events in the spool: ${errorText(err)}; a restart will replay them, and the procedure ignores repeated ids`)
    }
  }

  const park = (entry: Entry, error: string): void => {
    parkedEvents.push({ event: entry.event, error, attempts: entry.attempts })
    logger.error(`event ${entry.event.id} (${entry.event.type}) parked after ${entry.attempts}/${maxAttempts} attempts: ${error}`)
  }

  const takeBatch = (now: number): Entry[] => {
    const batch: Entry[] = []
    const rest: Entry[] = []
    for (const entry of queue) {
      if (batch.length < maxBatch && entry.notBefore <= now) batch.push(entry)
      else rest.push(entry)
    }
    queue = rest
    return batch
  }

  /**
   * Starts as many batches as the sink may take at once. A batch goes when it is full, when its oldest
   * event has waited `flushDelayMs`, or at once after close(); otherwise the pump comes back when the
   * first of those, or the next retry, is due.
   */
  /** Brings spilled events back into memory once the queue has room for a good part of them. */
  const refill = (): void => {
    if (spilled === 0 || !options.overflow || queue.length > maxQueued / 2) return
    const skip = new Set<string>(inFlightIds)
    for (const entry of queue) skip.add(entry.event.id)
    const { events, cursor } = options.overflow.readFrom(spillCursor, maxQueued - queue.length, skip)
    spillCursor = cursor
    const now = Date.now()
    for (const event of events) queue.push({ event, attempts: 0, notBefore: 0, enqueuedAt: now })
    spilled = events.length === 0 ? 0 : Math.max(0, spilled - events.length)
  }

  function pump(): void {
    pending = undefined
    if (sinkClosed) return
    refill()
    const now = Date.now()
    if (now < pausedUntil) return requestPump(pausedUntil - now)
    while (running < concurrency) {
      let ready = 0
      let oldest = Infinity
      let nextRetry = Infinity
      for (const entry of queue) {
        if (entry.notBefore <= now) {
          ready++
          if (entry.enqueuedAt < oldest) oldest = entry.enqueuedAt
        } else if (entry.notBefore < nextRetry) nextRetry = entry.notBefore
      }
      if (ready === 0) {
        if (nextRetry < Infinity) requestPump(nextRetry - now)
        break
      }
      const due = oldest + flushDelayMs
      if (ready < maxBatch && due > now && !closed) {
        requestPump(due - now)
        break
      }
      void deliver(takeBatch(now))
    }
    settleWaiters()
  }

  async function deliver(ready: Entry[]): Promise<void> {
    running++
    inFlight += ready.length
    for (const entry of ready) inFlightIds.add(entry.event.id)
    try {
      if (ready.length > 0) await sink.deliver(ready.map((entry) => entry.event))
      delivered += ready.length
      sinkFailures = 0
      stored(ready.map((entry) => entry.event.id))
    } catch (err) {
      sinkErrors++
      lastError = errorText(err)
      if (err instanceof DeliveryError) {
        // The sink stored the others: only the named events are retried, each on its own clock, so a
        // poison event never holds back the rest.
        delivered += ready.length - err.failed.size
        stored(ready.filter((entry) => !err.failed.has(entry.event.id)).map((entry) => entry.event.id))
        for (const entry of ready) {
          const failure = err.failed.get(entry.event.id)
          if (!failure) continue
          entry.attempts++
          // A permanent failure (an event that cannot be described) would fail the same way again.
          if (entry.attempts >= maxAttempts || (failure as { permanent?: unknown }).permanent === true) {
            park(entry, errorText(failure))
          } else {
            const delay = backoffDelay(entry.attempts, initialDelayMs, maxDelayMs)
            entry.notBefore = Date.now() + delay
            logger.warn(`procedure rejected event ${entry.event.id} (${entry.event.type}), attempt ${entry.attempts}/${maxAttempts}: ${errorText(failure)}; retrying in ${delay} ms`)
            queue.push(entry)
          }
        }
      } else {
        // The sink itself failed (database down): nothing in the batch is at fault, so it goes back
        // to the front in order and the whole outbox waits.
        sinkFailures++
        const retryAfter = backoffDelay(sinkFailures, initialDelayMs, maxDelayMs)
        pausedUntil = Date.now() + retryAfter
        logger.warn(`delivery to ${sink.description} failed (try ${sinkFailures}, ${ready.length} events waiting in this batch): ${lastError}; retrying in ${retryAfter} ms`)
        queue = ready.concat(queue)
      }
    } finally {
      inFlight -= ready.length
      for (const entry of ready) inFlightIds.delete(entry.event.id)
      running--
    }
    pump()
  }

  const flush = (): Promise<void> => {
    if (queue.length === 0 && inFlight === 0 && running === 0) return Promise.resolve()
    return new Promise((resolve) => waiters.push(resolve))
  }

  return {
    enqueue(event, spooledAt) {
      if (closed) {
        logger.error(`event ${event.id} (${event.type}) arrived after close() and was not recorded`)
        return
      }
      if (spooledAt !== undefined && options.overflow && (spilled > 0 || queue.length + inFlight >= maxQueued)) {
        // Full: the event waits in the spool; once spilling, later events follow it there, in order.
        if (spilled === 0) spillCursor = spooledAt
        spilled++
        requestPump(0)
        return
      }
      queue.push({ event, attempts: 0, notBefore: 0, enqueuedAt: Date.now() })
      // Due when its batch is full or after the flush delay; an earlier pump (a retry, another batch)
      // takes it along. While the sink is down, the pump puts it back to wait.
      requestPump(queue.length >= maxBatch ? 0 : flushDelayMs)
    },
    flush,
    async close(timeoutMs = 10_000) {
      if (closed) return
      closed = true
      // One try now rather than at the end of a backoff that may outlast the timeout: the database may
      // be back (a failure pauses again, within the timeout).
      pausedUntil = 0
      cancelPump()
      requestPump(0)
      let timeout: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        flush().then(() => false),
        new Promise<boolean>((resolve) => {
          timeout = setTimeout(() => resolve(true), timeoutMs)
        }),
      ])
      clearTimeout(timeout)
      sinkClosed = true
      cancelPump()
      if (timedOut) {
        logger.error(`closing with ${queue.length + inFlight} events not delivered to ${sink.description} after ${timeoutMs} ms; last error: ${lastError ?? 'none'}`)
      }
      await sink.close()
    },
    metrics() {
      let oldest: number | undefined
      for (const entry of queue) if (oldest === undefined || entry.event.time < oldest) oldest = entry.event.time
      return { queued: queue.length + spilled, inFlight, delivered, sinkErrors, parked: parkedEvents.length, oldestPendingTime: oldest, lastError, inMemory: queue.length }
    },
    parked() {
      return parkedEvents
    },
  }
}

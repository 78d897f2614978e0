import type { AuditEvent, DescribedEvent, Sink } from '../types.js'
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
  readonly sink: Sink
  readonly describe: (event: AuditEvent) => DescribedEvent
  readonly logger: Logger
  /** Most events handed to the sink at once. @defaultValue 100 */
  readonly maxBatch?: number
  /**
   * How long the first event of a batch waits for others to share its round trip: a batch goes out at
   * `maxBatch` events or after this delay, whichever comes first. @defaultValue 0 (the next turn of the event loop)
   */
  readonly flushDelayMs?: number
  readonly retry?: RetryOptions
}

/** An event the procedure kept rejecting; kept in memory and shown to the admin, never dropped. */
export interface ParkedEvent {
  readonly event: AuditEvent
  readonly error: string
  readonly attempts: number
}

/** What the outbox is doing, for health checks and tests. */
export interface OutboxMetrics {
  /** Events waiting, including those being retried. */
  readonly queued: number
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
 * States: `idle` → (first event) `collecting` → (`maxBatch` events or `flushDelayMs`) `delivering` →
 * `idle`, or → `waiting` after a failure → `delivering` when the delay is over. After
 * {@link Outbox.close} no event is accepted. A batch opens on the first event: under load one round trip
 * carries many events, at low load a single event goes out after `flushDelayMs`.
 */
export interface Outbox {
  /** Queues an event; never throws, never waits. */
  enqueue(event: AuditEvent): void
  /** Resolves once everything queued so far is stored or parked. */
  flush(): Promise<void>
  /** Flushes for at most `timeoutMs`, then closes the sink; says how many events were left undelivered. */
  close(timeoutMs?: number): Promise<void>
  metrics(): OutboxMetrics
  parked(): readonly ParkedEvent[]
}

interface Entry {
  readonly event: AuditEvent
  described: DescribedEvent | undefined
  attempts: number
  /** Epoch ms before which this entry is not retried (poison-event backoff). */
  notBefore: number
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
  const { sink, describe, logger } = options
  const maxBatch = options.maxBatch ?? 100
  const flushDelayMs = options.flushDelayMs ?? 0
  const initialDelayMs = options.retry?.initialDelayMs ?? 100
  const maxDelayMs = options.retry?.maxDelayMs ?? 30_000
  const maxAttempts = options.retry?.maxAttempts ?? 8

  let queue: Entry[] = []
  const parkedEvents: ParkedEvent[] = []
  let state: 'idle' | 'collecting' | 'delivering' | 'waiting' = 'idle'
  /** close() was called: no new events. */
  let closed = false
  /** close() gave up and closed the sink: nothing may be sent any more. */
  let sinkClosed = false
  let timer: { readonly cancel: () => void } | undefined
  let sinkFailures = 0
  let inFlight = 0
  let delivered = 0
  let sinkErrors = 0
  let lastError: string | undefined
  let waiters: Array<() => void> = []

  const settleWaiters = (): void => {
    if (queue.length > 0 || inFlight > 0) return
    const ready = waiters
    waiters = []
    for (const resolve of ready) resolve()
  }

  const cancel = (): void => {
    timer?.cancel()
    timer = undefined
  }

  const schedule = (delayMs: number, next: 'collecting' | 'waiting' = 'waiting'): void => {
    cancel()
    if (sinkClosed) {
      state = 'idle'
      return
    }
    state = delayMs > 0 ? next : 'collecting'
    // Unref'd like pino's timers: a pending retry alone does not keep the process alive;
    // close() is what drains on shutdown.
    if (delayMs > 0) {
      const handle = setTimeout(run, delayMs).unref()
      timer = { cancel: () => clearTimeout(handle) }
    } else {
      const handle = setImmediate(run)
      timer = { cancel: () => clearImmediate(handle) }
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

  async function run(): Promise<void> {
    timer = undefined
    const now = Date.now()
    const batch = takeBatch(now)
    if (batch.length === 0) {
      if (queue.length > 0) schedule(Math.max(1, Math.min(...queue.map((e) => e.notBefore)) - now))
      else state = 'idle'
      settleWaiters()
      return
    }
    state = 'delivering'
    const ready: Entry[] = []
    for (const entry of batch) {
      try {
        entry.described ??= describe(entry.event)
        ready.push(entry)
      } catch (err) {
        park(entry, `could not describe the event: ${errorText(err)}`)
      }
    }
    inFlight = ready.length
    let retryAfter = 0
    try {
      if (ready.length > 0) await sink.deliver(ready.map((entry) => entry.described as DescribedEvent))
      delivered += ready.length
      sinkFailures = 0
    } catch (err) {
      sinkErrors++
      lastError = errorText(err)
      if (err instanceof DeliveryError) {
        // The sink stored the others: only the named events are retried, each on its own clock, so a
        // poison event never holds back the rest.
        delivered += ready.length - err.failed.size
        for (const entry of ready) {
          const failure = err.failed.get(entry.event.id)
          if (!failure) continue
          entry.attempts++
          if (entry.attempts >= maxAttempts) {
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
        retryAfter = backoffDelay(sinkFailures, initialDelayMs, maxDelayMs)
        logger.warn(`delivery to ${sink.description} failed (try ${sinkFailures}, ${ready.length} events waiting in this batch): ${lastError}; retrying in ${retryAfter} ms`)
        queue = ready.concat(queue)
      }
    } finally {
      inFlight = 0
    }
    if (queue.length > 0) schedule(retryAfter)
    else state = 'idle'
    settleWaiters()
  }

  const flush = (): Promise<void> => {
    if (queue.length === 0 && inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => waiters.push(resolve))
  }

  return {
    enqueue(event) {
      if (closed) {
        logger.error(`event ${event.id} (${event.type}) arrived after close() and was not recorded`)
        return
      }
      queue.push({ event, described: undefined, attempts: 0, notBefore: 0 })
      // While only a poison event waits for its retry the sink is up, so new events go as usual; while
      // the sink itself is down they wait with the rest.
      if (state === 'idle' || (state === 'waiting' && sinkFailures === 0)) schedule(queue.length >= maxBatch ? 0 : flushDelayMs, 'collecting')
      else if (state === 'collecting' && queue.length >= maxBatch && timer !== undefined) schedule(0)
    },
    flush,
    async close(timeoutMs = 10_000) {
      if (closed) return
      closed = true
      let timeout: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        flush().then(() => false),
        new Promise<boolean>((resolve) => {
          timeout = setTimeout(() => resolve(true), timeoutMs)
        }),
      ])
      clearTimeout(timeout)
      sinkClosed = true
      cancel()
      if (timedOut) {
        logger.error(`closing with ${queue.length + inFlight} events not delivered to ${sink.description} after ${timeoutMs} ms; last error: ${lastError ?? 'none'}`)
      }
      await sink.close()
    },
    metrics() {
      let oldest: number | undefined
      for (const entry of queue) if (oldest === undefined || entry.event.time < oldest) oldest = entry.event.time
      return { queued: queue.length, inFlight, delivered, sinkErrors, parked: parkedEvents.length, oldestPendingTime: oldest, lastError }
    },
    parked() {
      return parkedEvents
    },
  }
}

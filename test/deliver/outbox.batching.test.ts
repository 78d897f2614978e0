import { afterEach, describe, expect, it } from 'vitest'
import { backoffDelay, createOutbox } from '../../src/deliver/outbox.js'
import type { Outbox, OutboxOptions } from '../../src/deliver/outbox.js'
import { DeliveryError } from '../../src/types.js'
import type { AuditEvent, Sink } from '../../src/types.js'
import { eventually, sleep } from '../helpers/eventually.js'
import { memoryLogger } from '../helpers/temp-project.js'
import { auditEvent } from '../helpers/audit-event.js'

/** Only the id and type matter to the outbox. */
const event = (id: string, type: AuditEvent['type'] = 'LOGIN'): AuditEvent => auditEvent(type, { id, time: Date.now() })

const events = (count: number, prefix = 'e'): AuditEvent[] => Array.from({ length: count }, (_, i) => event(`${prefix}${i + 1}`))


/**
 * An in-memory sink. `behaviour` decides each call: return to store the whole batch, throw a plain Error
 * (the database is down), or throw a DeliveryError after storing part of it.
 */
class FakeSink implements Sink {
  readonly description = 'fake sink'
  /** Ids of every batch handed over, stored or not. */
  readonly calls: string[][] = []
  /** Ids stored, in the order they were stored. */
  readonly stored: string[] = []
  closed = 0
  constructor(private readonly behaviour: (batch: readonly AuditEvent[], call: number) => Promise<void> | void = () => {}) {}

  async deliver(batch: readonly AuditEvent[]): Promise<void> {
    const ids = batch.map((e) => e.id)
    this.calls.push(ids)
    await this.behaviour(batch, this.calls.length)
    this.stored.push(...ids)
  }

  async close(): Promise<void> {
    this.closed++
  }
}

/** A sink that stores everything except the named poison ids, which it rejects with a DeliveryError. */
class PoisonSink extends FakeSink {
  constructor(private readonly poison: ReadonlySet<string>) {
    super()
  }

  override async deliver(batch: readonly AuditEvent[]): Promise<void> {
    this.calls.push(batch.map((e) => e.id))
    const failed = new Map<string, Error>()
    for (const e of batch) {
      if (this.poison.has(e.id)) failed.set(e.id, new Error(`violates check constraint for ${e.id}`))
      else this.stored.push(e.id)
    }
    if (failed.size > 0) throw new DeliveryError(`${failed.size} of ${batch.length} events rejected`, failed)
  }
}

/** A promise with its resolve and reject exposed. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void
  let reject!: (err: Error) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Whether `promise` has settled by the time the event loop has turned once. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false
  void promise.then(
    () => (done = true),
    () => (done = true),
  )
  await new Promise((resolve) => setImmediate(resolve))
  return done
}

const count = (ids: readonly string[], id: string): number => ids.filter((x) => x === id).length

let opened: Outbox[] = []
afterEach(async () => {
  // Outboxes a test left open are closed quickly so that no retry timer outlives the test.
  await Promise.all(opened.map((o) => o.close(10)))
  opened = []
})

function outbox(sink: Sink, options: Partial<OutboxOptions> = {}) {
  const logger = memoryLogger()
  const box = createOutbox({ sink, logger, retry: { initialDelayMs: 5, maxDelayMs: 20 }, ...options })
  opened.push(box)
  return { box, logger }
}

describe('outbox batching', () => {
  it('hands events enqueued in the same tick to the sink in one batch, in order', async () => {
    const sink = new FakeSink()
    const { box } = outbox(sink)
    for (const e of events(5)) box.enqueue(e)
    await box.flush()
    expect(sink.calls).toEqual([['e1', 'e2', 'e3', 'e4', 'e5']])
    expect(box.metrics()).toMatchObject({ queued: 0, inFlight: 0, delivered: 5, sinkErrors: 0, parked: 0 })
  })

  it('splits a same-tick burst into batches of at most maxBatch, keeping the order', async () => {
    const sink = new FakeSink()
    const { box } = outbox(sink, { maxBatch: 2 })
    for (const e of events(5)) box.enqueue(e)
    await box.flush()
    expect(sink.calls).toEqual([['e1', 'e2'], ['e3', 'e4'], ['e5']])
    expect(sink.stored).toEqual(['e1', 'e2', 'e3', 'e4', 'e5'])
  })

  it('puts events enqueued while a batch is being delivered into the next batch', async () => {
    const gate = deferred()
    const sink = new FakeSink((_batch, call) => (call === 1 ? gate.promise : undefined))
    const { box } = outbox(sink)
    box.enqueue(event('e1'))
    await eventually(async () => expect(sink.calls).toHaveLength(1), 1000, 1)
    box.enqueue(event('e2'))
    box.enqueue(event('e3'))
    gate.resolve()
    await box.flush()
    expect(sink.calls).toEqual([['e1'], ['e2', 'e3']])
  })

  it('hands the sink the events as they were captured, on a later turn than enqueue', async () => {
    const sink = new FakeSink()
    const { box } = outbox(sink)
    const e1 = event('e1')
    box.enqueue(e1)
    expect(sink.calls).toEqual([])
    await box.flush()
    expect(sink.calls).toEqual([['e1']])
  })
})

describe('outbox enqueue', () => {
  it('returns at once without throwing while the sink is slow, and delivers everything once it answers', async () => {
    const gate = deferred()
    const sink = new FakeSink(() => gate.promise)
    const { box } = outbox(sink, { maxBatch: 10 })
    box.enqueue(event('first'))
    await eventually(async () => expect(box.metrics().inFlight).toBe(1), 1000, 1)

    const started = performance.now()
    for (const e of events(1000)) {
      expect(box.enqueue(e)).toBeUndefined()
    }
    expect(performance.now() - started).toBeLessThan(500)
    expect(box.metrics()).toMatchObject({ queued: 1000, inFlight: 1, delivered: 0 })

    const flushed = box.flush()
    expect(await settled(flushed)).toBe(false)
    gate.resolve()
    await flushed
    expect(sink.stored).toEqual(['first', ...events(1000).map((e) => e.id)])
    expect(box.metrics()).toMatchObject({ queued: 0, inFlight: 0, delivered: 1001 })
  })

  it('does not throw when the sink throws synchronously, and retries the batch', async () => {
    let calls = 0
    const stored: string[] = []
    const sink: Sink = {
      description: 'synchronously throwing sink',
      deliver: (batch) => {
        if (++calls === 1) throw new Error('synchronous failure')
        stored.push(...batch.map((e) => e.id))
        return Promise.resolve()
      },
      close: async () => {},
    }
    const { box } = outbox(sink)
    expect(() => box.enqueue(event('e1'))).not.toThrow()
    await box.flush()
    expect(stored).toEqual(['e1'])
    expect(box.metrics()).toMatchObject({ sinkErrors: 1, lastError: 'synchronous failure', delivered: 1 })
  })

  it('parks at once, without retrying, an event the sink calls a permanent failure, while delivering the others', async () => {
    const sink = new FakeSink()
    sink.deliver = async function (batch) {
      this.calls.push(batch.map((e) => e.id))
      const failed = new Map<string, Error>()
      for (const e of batch) {
        if (e.id === 'e2') failed.set(e.id, Object.assign(new Error('could not describe the event: bad'), { permanent: true }))
        else this.stored.push(e.id)
      }
      if (failed.size > 0) throw new DeliveryError('1 event not described', failed)
    }
    const { box } = outbox(sink)
    for (const e of events(3)) expect(() => box.enqueue(e)).not.toThrow()
    await box.flush()
    expect(sink.stored).toEqual(['e1', 'e3'])
    expect(sink.calls).toEqual([['e1', 'e2', 'e3']])
    expect(box.parked()).toEqual([expect.objectContaining({ attempts: 1, error: expect.stringContaining('could not describe') })])
    expect(box.parked()[0]!.event.id).toBe('e2')
  })
})

describe('outbox when the sink is down', () => {
  it('loses nothing and keeps the order while the sink throws for its first calls, then delivers everything', async () => {
    const failures = 4
    const sink = new FakeSink((_batch, call) => {
      if (call <= failures) throw new Error(`connection refused (call ${call})`)
    })
    const { box, logger } = outbox(sink, { maxBatch: 3 })
    for (const e of events(5)) box.enqueue(e)
    // More events arrive during the outage.
    await eventually(async () => expect(sink.calls.length).toBeGreaterThanOrEqual(2), 1000, 1)
    for (const e of events(2, 'late')) box.enqueue(e)
    await box.flush()

    expect(sink.stored).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'late1', 'late2'])
    const metrics = box.metrics()
    expect(metrics.sinkErrors).toBe(failures)
    expect(metrics.lastError).toContain('connection refused')
    expect(metrics).toMatchObject({ queued: 0, inFlight: 0, delivered: 7, parked: 0 })
    expect(box.parked()).toEqual([])
    // Every failed try is retried with the same, oldest events first.
    for (let call = 0; call < failures; call++) expect(sink.calls[call]).toEqual(['e1', 'e2', 'e3'])
    expect(logger.lines.filter((l) => l.includes('connection refused'))).toHaveLength(failures)
  })

  it('retries a sink that is down beyond maxAttempts without parking anything, since no event is at fault', async () => {
    const sink = new FakeSink((_batch, call) => {
      if (call <= 10) throw Object.assign(new Error('database is starting up'), { code: '57P03' })
    })
    const { box } = outbox(sink, { retry: { initialDelayMs: 1, maxDelayMs: 5, maxAttempts: 2 } })
    for (const e of events(3)) box.enqueue(e)
    await box.flush()
    expect(sink.stored).toEqual(['e1', 'e2', 'e3'])
    expect(box.parked()).toEqual([])
    expect(box.metrics().sinkErrors).toBe(10)
    expect(box.metrics().lastError).toBe('57P03: database is starting up')
  })

  it('reports the oldest pending event time while events wait', async () => {
    const gate = deferred()
    const sink = new FakeSink((_batch, call) => {
      if (call === 1) throw new Error('down')
      return gate.promise
    })
    const { box } = outbox(sink, { retry: { initialDelayMs: 200, maxDelayMs: 200 } })
    const first = { ...event('e1'), time: 1_000 }
    box.enqueue(first)
    box.enqueue({ ...event('e2'), time: 2_000 })
    await eventually(async () => expect(box.metrics().sinkErrors).toBe(1), 1000, 1)
    expect(box.metrics()).toMatchObject({ queued: 2, oldestPendingTime: 1_000 })
    gate.resolve()
    await box.flush()
    expect(box.metrics().oldestPendingTime).toBeUndefined()
  })
})

describe('outbox with a poison event', () => {
  it('parks an event the procedure keeps rejecting after maxAttempts tries, with its error, and flush resolves after that', async () => {
    const sink = new PoisonSink(new Set(['e3']))
    const { box, logger } = outbox(sink, { retry: { initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 4 } })
    for (const e of events(5)) box.enqueue(e)
    await box.flush()

    expect(count(sink.calls.flat(), 'e3')).toBe(4)
    expect(sink.stored).toEqual(['e1', 'e2', 'e4', 'e5'])
    const parked = box.parked()
    expect(parked).toHaveLength(1)
    expect(parked[0]!.event.id).toBe('e3')
    expect(parked[0]!.attempts).toBe(4)
    expect(parked[0]!.error).toContain('violates check constraint for e3')
    expect(box.metrics()).toMatchObject({ queued: 0, inFlight: 0, delivered: 4, parked: 1, sinkErrors: 4 })
    expect(logger.lines.some((l) => l.includes('e3') && l.includes('parked'))).toBe(true)
  })

  it('delivers the events batched with a poison event on the first try, without waiting for its retries', async () => {
    const sink = new PoisonSink(new Set(['e3']))
    const { box } = outbox(sink, { retry: { initialDelayMs: 1000, maxDelayMs: 2000, maxAttempts: 2 } })
    for (const e of events(5)) box.enqueue(e)
    await eventually(async () => expect(sink.calls).toHaveLength(1), 1000, 1)
    expect(sink.stored).toEqual(['e1', 'e2', 'e4', 'e5'])
    expect(box.metrics()).toMatchObject({ delivered: 4, queued: 1 })
  })

  it('delivers events enqueued while a poison event waits for its retry without waiting for that retry', async () => {
    const sink = new PoisonSink(new Set(['poison']))
    // The poison event's first retry is 500-1000 ms away.
    const { box } = outbox(sink, { retry: { initialDelayMs: 1000, maxDelayMs: 2000, maxAttempts: 2 } })
    box.enqueue(event('poison'))
    await eventually(async () => expect(sink.calls).toHaveLength(1), 1000, 1)
    await sleep(20)

    const enqueued = performance.now()
    box.enqueue(event('e1'))
    await eventually(async () => expect(sink.stored).toContain('e1'), 2000, 1)
    expect(performance.now() - enqueued).toBeLessThan(250)
    expect(count(sink.calls.flat(), 'poison')).toBe(1)
  })

  it('counts the poison event once per failed delivery and keeps the other events flowing in order', async () => {
    const sink = new PoisonSink(new Set(['e2', 'e4']))
    const { box } = outbox(sink, { maxBatch: 2, retry: { initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 3 } })
    for (const e of events(6)) box.enqueue(e)
    await box.flush()
    expect(sink.stored).toEqual(['e1', 'e3', 'e5', 'e6'])
    expect(box.parked().map((p) => [p.event.id, p.attempts])).toEqual(expect.arrayContaining([['e2', 3], ['e4', 3]]))
    expect(box.parked()).toHaveLength(2)
    expect(count(sink.calls.flat(), 'e2')).toBe(3)
    expect(count(sink.calls.flat(), 'e4')).toBe(3)
  })
})

describe('outbox flush and close', () => {
  it('resolves flush() at once when nothing is queued', async () => {
    const { box } = outbox(new FakeSink())
    expect(await settled(box.flush())).toBe(true)
  })

  it('resolves flush() only when everything queued has been delivered', async () => {
    const gates = [deferred(), deferred()]
    const sink = new FakeSink((_batch, call) => gates[call - 1]?.promise)
    const { box } = outbox(sink, { maxBatch: 2 })
    for (const e of events(3)) box.enqueue(e)
    const flushed = box.flush()

    await eventually(async () => expect(sink.calls).toHaveLength(1), 1000, 1)
    expect(await settled(flushed)).toBe(false)
    gates[0]!.resolve()
    await eventually(async () => expect(sink.calls).toHaveLength(2), 1000, 1)
    expect(await settled(flushed)).toBe(false)
    expect(sink.stored).toEqual(['e1', 'e2'])
    gates[1]!.resolve()
    await flushed
    expect(sink.stored).toEqual(['e1', 'e2', 'e3'])
  })

  it('resolves flush() only after a sink outage is over', async () => {
    let down = true
    const sink = new FakeSink(() => {
      if (down) throw new Error('down')
    })
    const { box } = outbox(sink)
    box.enqueue(event('e1'))
    const flushed = box.flush()
    await eventually(async () => expect(box.metrics().sinkErrors).toBeGreaterThanOrEqual(3), 2000, 1)
    expect(await settled(flushed)).toBe(false)
    down = false
    await flushed
    expect(sink.stored).toEqual(['e1'])
  })

  it('tries once more at close() without waiting out a long backoff, so a database back from an outage gets everything', async () => {
    let down = true
    const sink = new FakeSink(() => {
      if (down) throw new Error('ECONNREFUSED')
    })
    const { box } = outbox(sink, { retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 } })
    for (const e of events(3)) box.enqueue(e)
    await eventually(async () => expect(box.metrics().sinkErrors).toBe(1), 2000, 1)
    // The next try is 30 to 60 s away; the database answers again, and the app shuts down now.
    down = false
    const started = performance.now()
    await box.close(5_000)
    expect(performance.now() - started).toBeLessThan(2_000)
    expect(sink.stored).toEqual(['e1', 'e2', 'e3'])
  })

  it('closes after about timeoutMs when the sink never recovers, saying how many events were not delivered', async () => {
    const sink = new FakeSink(() => {
      throw new Error('ECONNREFUSED')
    })
    const { box, logger } = outbox(sink)
    for (const e of events(3)) box.enqueue(e)
    const started = performance.now()
    await box.close(300)
    const elapsed = performance.now() - started
    expect(elapsed).toBeGreaterThanOrEqual(290)
    expect(elapsed).toBeLessThan(1500)
    expect(sink.closed).toBe(1)
    const errors = logger.lines.filter((l) => l.includes('not delivered'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/\b3 events not delivered\b/)
    expect(errors[0]).toContain('ECONNREFUSED')
  })

  it('counts an event still in flight at the close timeout as undelivered', async () => {
    const sink = new FakeSink(() => new Promise<void>(() => {}))
    const { box, logger } = outbox(sink, { maxBatch: 2 })
    for (const e of events(3)) box.enqueue(e)
    await eventually(async () => expect(box.metrics().inFlight).toBe(2), 1000, 1)
    await box.close(50)
    expect(logger.lines.some((l) => /\b3 events not delivered\b/.test(l))).toBe(true)
  })

  it('does not retry against the sink after close() has given up and closed it', async () => {
    const gate = deferred()
    const sink = new FakeSink((_batch, call) => (call === 1 ? gate.promise : undefined))
    const { box } = outbox(sink, { retry: { initialDelayMs: 5, maxDelayMs: 5 } })
    box.enqueue(event('e1'))
    await eventually(async () => expect(sink.calls).toHaveLength(1), 1000, 1)
    await box.close(50)
    expect(sink.closed).toBe(1)
    // The delivery that was in flight at close fails afterwards.
    gate.reject(new Error('connection closed'))
    await sleep(100)
    expect(sink.calls).toHaveLength(1)
  })

  it('closes at once when everything is delivered, without logging an error', async () => {
    const sink = new FakeSink()
    const { box, logger } = outbox(sink)
    for (const e of events(2)) box.enqueue(e)
    await box.close(5000)
    expect(sink.stored).toEqual(['e1', 'e2'])
    expect(sink.closed).toBe(1)
    expect(logger.lines).toEqual([])
  })

  it('logs an error and does not throw for an event enqueued after close', async () => {
    const sink = new FakeSink()
    const { box, logger } = outbox(sink)
    await box.close(100)
    expect(() => box.enqueue(event('late', 'LOGOUT'))).not.toThrow()
    await sleep(10)
    expect(sink.calls).toEqual([])
    expect(logger.lines).toHaveLength(1)
    expect(logger.lines[0]).toContain('late')
    expect(logger.lines[0]).toContain('after close()')
  })

  it('closes the sink only once when close() is called twice', async () => {
    const sink = new FakeSink()
    const { box } = outbox(sink)
    await Promise.all([box.close(100), box.close(100)])
    expect(sink.closed).toBe(1)
  })
})

describe('backoffDelay', () => {
  const ceiling = (attempt: number, initialMs: number, maxMs: number) => Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1))

  it('stays between half the ceiling and the ceiling, which doubles per attempt', () => {
    for (let attempt = 1; attempt <= 12; attempt++) {
      const top = ceiling(attempt, 100, 30_000)
      expect(backoffDelay(attempt, 100, 30_000, () => 0)).toBe(top / 2)
      expect(backoffDelay(attempt, 100, 30_000, () => 1)).toBe(top)
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt, 100, 30_000)
        expect(delay).toBeGreaterThanOrEqual(top / 2)
        expect(delay).toBeLessThanOrEqual(top)
      }
    }
  })

  it('starts from the initial delay on the first attempt', () => {
    expect(backoffDelay(1, 100, 30_000, () => 1)).toBe(100)
    expect(backoffDelay(2, 100, 30_000, () => 1)).toBe(200)
    expect(backoffDelay(0, 100, 30_000, () => 1)).toBe(100)
  })

  it('caps the ceiling at maxMs however many attempts there were', () => {
    for (const attempt of [10, 20, 64, 1100, 10_000]) {
      expect(backoffDelay(attempt, 100, 30_000, () => 1)).toBe(30_000)
      expect(backoffDelay(attempt, 100, 30_000, () => 0)).toBe(15_000)
      const delay = backoffDelay(attempt, 100, 30_000)
      expect(delay).toBeGreaterThanOrEqual(15_000)
      expect(delay).toBeLessThanOrEqual(30_000)
    }
  })

  it('keeps odd ceilings within bounds after rounding', () => {
    for (let i = 0; i <= 100; i++) {
      const delay = backoffDelay(1, 5, 20, () => i / 100)
      expect(delay).toBeGreaterThanOrEqual(2.5)
      expect(delay).toBeLessThanOrEqual(5)
      expect(Number.isInteger(delay)).toBe(true)
    }
  })
})

describe('outbox batching by size, delay and concurrency', () => {
  it('holds a lone event for the flush delay, then sends it by itself', async () => {
    const sink = new FakeSink()
    const outbox = createOutbox({ sink, logger: memoryLogger(), maxBatch: 10, flushDelayMs: 80 })
    const start = Date.now()
    outbox.enqueue(event('lone'))
    await sleep(30)
    expect(sink.calls).toEqual([])
    await outbox.flush()
    expect(Date.now() - start).toBeGreaterThanOrEqual(75)
    expect(sink.calls).toEqual([['lone']])
  })

  it('sends a full batch at once without waiting for the flush delay', async () => {
    const sink = new FakeSink()
    const outbox = createOutbox({ sink, logger: memoryLogger(), maxBatch: 5, flushDelayMs: 10_000 })
    for (const e of events(12)) outbox.enqueue(e)
    await eventually(async () => expect(sink.stored).toHaveLength(10), 2000, 10)
    expect(sink.calls.slice(0, 2).map((c) => c.length)).toEqual([5, 5])
    await outbox.close(100)
    expect(sink.stored).toHaveLength(12)
  })

  it('keeps up to `concurrency` batches in flight, and no more', async () => {
    let active = 0
    let most = 0
    const sink = new FakeSink(async () => {
      active++
      most = Math.max(most, active)
      await sleep(30)
      active--
    })
    const outbox = createOutbox({ sink, logger: memoryLogger(), maxBatch: 10, concurrency: 3 })
    for (const e of events(100)) outbox.enqueue(e)
    await outbox.flush()
    expect(most).toBe(3)
    expect([...sink.stored].sort()).toEqual(events(100).map((e) => e.id).sort())
  })
})

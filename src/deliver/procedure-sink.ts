import type { DescribedEvent, Sink } from '../types.js'
import { DeliveryError } from '../types.js'
import { createDescriber, describeBatch } from '../describe/event-xml.js'
import type { Describer } from '../describe/event-xml.js'
import type { SqlClient } from './sql-client.js'
import { isUnavailable } from './sql-client.js'

/** How one dialect calls the logging procedure. */
export interface ProcedureCalls {
  /** CALL proc(session_context, data, type) for one event. */
  one(client: SqlClient, event: DescribedEvent): Promise<unknown>
  /** CALL proc_batch(...) for many, when the database has a batch variant. */
  many: ((client: SqlClient, events: readonly DescribedEvent[]) => Promise<unknown>) | undefined
}

/**
 * A sink that calls a stored procedure. Each event is described (its two XML documents built) here, on
 * the thread that delivers, not on the one that recorded it. A batch goes out in one round trip when a
 * batch variant exists; if the batch is refused, each event is called alone so that only the events the
 * procedure rejects are reported (and retried, then parked, by the outbox). An unavailable database is
 * thrown as it is, so the outbox waits for it instead of counting the outage against the events.
 */
export function createProcedureSink(client: SqlClient, proc: string, calls: ProcedureCalls, close: () => Promise<void>, describe: Describer = createDescriber()): Sink {
  const oneByOne = async (batch: readonly DescribedEvent[], failed: Map<string, Error>): Promise<void> => {
    for (const event of batch) {
      try {
        await calls.one(client, event)
      } catch (err) {
        if (isUnavailable(err)) throw err
        failed.set(event.event.id, err as Error)
      }
    }
  }
  const store = async (batch: readonly DescribedEvent[], failed: Map<string, Error>): Promise<void> => {
    if (batch.length === 0) return
    if (batch.length === 1 || !calls.many) return oneByOne(batch, failed)
    try {
      await calls.many(client, batch)
    } catch (err) {
      if (isUnavailable(err)) throw err
      await oneByOne(batch, failed)
    }
  }
  return {
    description: `${proc} in ${client.description}`,
    async deliver(events) {
      const { described, failed } = describeBatch(events, describe)
      await store(described, failed)
      if (failed.size > 0) throw new DeliveryError(`${failed.size} of ${events.length} events refused by ${proc}`, failed)
    },
    close,
  }
}

/** `dbo.securitylogging` → schema `dbo` and name `securitylogging`; unqualified names have no schema. */
export function splitName(qualified: string): { schema: string | undefined; name: string } {
  const dot = qualified.indexOf('.')
  return dot > 0 ? { schema: qualified.slice(0, dot), name: qualified.slice(dot + 1) } : { schema: undefined, name: qualified }
}

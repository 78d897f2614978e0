import type { DescribedEvent, Sink } from '../../types.js'
import type { Describer } from '../../describe/event-xml.js'
import { createProcedureSink, splitName } from '../procedure-sink.js'
import type { SqlClient } from '../sql-client.js'
import { isUnavailable } from '../sql-client.js'
import { isPacketTooLarge } from './mariadb-client.js'

/**
 * Finds a routine the way a Showcase user names it: `dbo.securitylogging` is `securitylogging` in the
 * database `dbo` when that database has it, otherwise `securitylogging` in the connection's database.
 * Returns the name to call, or undefined when neither exists.
 */
export async function resolveMariadbRoutine(client: SqlClient, qualified: string): Promise<string | undefined> {
  const { schema, name } = splitName(qualified)
  const rows = await client.query<{ ROUTINE_SCHEMA: string; here: number }>(
    `SELECT ROUTINE_SCHEMA, ROUTINE_SCHEMA = DATABASE() AS here FROM information_schema.ROUTINES
      WHERE ROUTINE_TYPE = 'PROCEDURE' AND ROUTINE_NAME = ? AND (ROUTINE_SCHEMA = ? OR ROUTINE_SCHEMA = DATABASE())`,
    [name, schema ?? null],
  )
  if (schema !== undefined && rows.some((row) => row.ROUTINE_SCHEMA === schema)) return `\`${schema}\`.\`${name}\``
  return rows.some((row) => Number(row.here) === 1) ? `\`${name}\`` : undefined
}

/** Resolves a table name the same way as {@link resolveMariadbRoutine}. */
export async function resolveMariadbTable(client: SqlClient, qualified: string): Promise<string> {
  const { schema, name } = splitName(qualified)
  if (schema !== undefined) {
    const rows = await client.query(`SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?`, [schema, name])
    if (rows.length > 0) return `\`${schema}\`.\`${name}\``
  }
  return `\`${name}\``
}

/** Ids of stored events remembered, so that a batch sent again after a failure skips them. */
const STORED_IDS = 100_000

/** Room left in a packet for `CALL name(...)` around the argument, and for the protocol's header. */
const STATEMENT_OVERHEAD = 1024

export interface MariadbProcedureOptions {
  /**
   * The server's max_allowed_packet in bytes, for tests that cannot lower the global (it needs SUPER).
   * @defaultValue read from the server once, when the sink is made
   */
  readonly maxAllowedPacket?: number
}

/**
 * A sink calling a MariaDB/MySQL procedure, which has no xml type: `CALL proc(?, ?, ?)` with the XML as
 * text (the shipped procedure checks it is well-formed), and `CALL proc_batch(?)` with a JSON array of
 * `{session_context, data, type}` when the database has the batch variant.
 *
 * A statement longer than the server's max_allowed_packet is refused with ER_NET_PACKET_TOO_LARGE
 * (SQLSTATE 08S01, which reads as an outage) or the server hangs up mid-write (ECONNRESET): a batch of
 * big events sent as one call would be put back and sent again for ever. So a batch goes out in calls
 * of at most half the packet, a call the server still finds too large is halved, and an event too
 * large on its own is refused as that event's error, to be parked.
 */
export async function createMariadbProcedureSink(
  client: SqlClient,
  proc: string,
  close: () => Promise<void>,
  describe?: Describer,
  options: MariadbProcedureOptions = {},
): Promise<Sink | undefined> {
  const routine = await resolveMariadbRoutine(client, proc)
  if (routine === undefined) return undefined
  const batch = await resolveMariadbRoutine(client, `${proc}_batch`)
  const maxPacket = options.maxAllowedPacket ?? Number((await client.query<{ max: unknown }>('SELECT @@max_allowed_packet AS max'))[0]?.max)
  const loneLimit = maxPacket - STATEMENT_OVERHEAD
  const callBudget = Math.floor(maxPacket / 2)
  // Ids of events a batch call stored, the latest STORED_IDS of them. When a call is refused the sink
  // calls each event of the batch alone, and when one fails for an outage the outbox sends the whole
  // batch again: events already stored must not go twice, since a user's batch procedure need not
  // ignore a repeated event id. By id, as every delivery describes its events anew.
  const stored = new Set<string>()
  const remember = (id: string): void => {
    if (stored.size >= STORED_IDS) stored.delete(stored.values().next().value as string)
    stored.add(id)
  }

  const tooLarge = (event: DescribedEvent, bytes: number, cause?: unknown): Error =>
    Object.assign(
      new Error(
        `authtrail: event ${event.event.id} (${event.event.type}) takes ${bytes} bytes to send to ${proc}, more than the server's ` +
          `max_allowed_packet of ${maxPacket} allows, so it is parked; raise max_allowed_packet on the server to store such events.`,
        { cause },
      ),
      // 54000, program limit exceeded: a refusal of this event, not an outage; retrying cannot help.
      { sqlState: '54000', permanent: true },
    )

  const one = async (c: SqlClient, e: DescribedEvent): Promise<void> => {
    if (stored.has(e.event.id)) return
    // The shipped procedure wraps its arguments in JSON_OBJECT, which MariaDB turns into null past
    // max_allowed_packet (warning 1301); the JSON is also longer than the two documents quoted.
    const bytes = Buffer.byteLength(argument(e))
    if (bytes > loneLimit) throw tooLarge(e, bytes)
    try {
      await c.query(`CALL ${routine}(?, ?, ?)`, [e.sessionContext, e.data, e.event.type])
    } catch (err) {
      throw isPacketTooLarge(err) ? tooLarge(e, bytes, err) : err
    }
  }

  const many = async (c: SqlClient, batchEvents: readonly DescribedEvent[]): Promise<void> => {
    const events = batchEvents.filter((e) => !stored.has(e.event.id))
    const args = events.map(argument)
    const sizes = args.map(callBytes)
    // Refusals are kept until every call has been tried, so that only the refused calls' events go
    // out one by one afterwards.
    let refusal: unknown
    const send = async (from: number, to: number): Promise<void> => {
      // Quoted, the JSON may be too long for a batch call and the event still fit a call of its own.
      if (to - from === 1 && sizes[from]! > loneLimit) {
        refusal ??= tooLarge(events[from]!, sizes[from]!)
        return
      }
      try {
        await c.query(`CALL ${batch}(?)`, [`[${args.slice(from, to).join(',')}]`])
        for (let i = from; i < to; i++) remember(events[i]!.event.id)
      } catch (err) {
        if (!isPacketTooLarge(err)) {
          if (isUnavailable(err)) throw err
          refusal ??= err
        } else if (to - from === 1) {
          refusal ??= tooLarge(events[from]!, sizes[from]!, err)
        } else {
          // The server counts differently than callBytes (another charset, a lowered global): halve.
          const middle = from + Math.ceil((to - from) / 2)
          await send(from, middle)
          await send(middle, to)
        }
      }
    }
    let start = 0
    let bytes = 0
    for (let i = 0; i < events.length; i++) {
      if (i > start && bytes + sizes[i]! > callBudget) {
        await send(start, i)
        start = i
        bytes = 0
      }
      bytes += sizes[i]!
    }
    if (events.length > start) await send(start, events.length)
    if (refusal !== undefined) throw refusal
  }

  return createProcedureSink(client, proc, { one, many: batch ? many : undefined }, close, describe)
}

/** One event as an element of the batch procedure's JSON array. */
function argument(e: DescribedEvent): string {
  return JSON.stringify({ session_context: e.sessionContext, data: e.data, type: e.event.type })
}

/**
 * Bytes that `text` adds to a statement once mysql2 has quoted it: its UTF-8, and a backslash before
 * each quote and backslash (JSON leaves no other character that sqlstring escapes).
 */
function callBytes(text: string): number {
  let escaped = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 || c === 0x27 || c === 0x5c) escaped++
  }
  return Buffer.byteLength(text) + escaped + 1
}

import { randomUUID } from 'node:crypto'
import { openProcedureSink } from '../../src/deliver/open-procedure-sink.js'
import type { SqlClient } from '../../src/deliver/sql-client.js'
import type { AuditEvent, AuditEventType } from '../../src/types.js'

export const FIREFOX_33 = 'Mozilla/5.0 (Windows NT 6.3; WOW64; rv:33.0) Gecko/20100101 Firefox/33.0'

/** A complete captured event with plausible values; LOGINERROR gets a method and message, LOGOUTERROR its message. */
export function auditEvent(type: AuditEventType, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: randomUUID(),
    type,
    time: Date.UTC(2024, 4, 17, 9, 30, 0, 123),
    sessionId: '0123456789ABCDEF0123456789ABCDEF',
    username: 'alice',
    userId: '1',
    ip: '203.0.113.7',
    host: '203.0.113.7',
    userAgent: FIREFOX_33,
    method: type === 'LOGINERROR' ? 'FORM' : '',
    message: type === 'LOGINERROR' ? 'Incorrect password.' : type === 'LOGOUTERROR' ? 'the session store did not save the logout; the session is still signed in' : '',
    urlParams: [],
    profile: {},
    ...overrides,
  }
}

/** Stores events through the namespace's own procedure, in one batch. */
export async function deliverEvents(ns: { client: SqlClient; proc: string }, events: readonly AuditEvent[]): Promise<void> {
  const sink = await openProcedureSink(ns.client, ns.proc, async () => {})
  await sink!.deliver(events)
}

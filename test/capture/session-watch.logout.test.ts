import { describe, expect, it } from 'vitest'
import { createMemoryLedger } from '../../src/capture/session-ledger.js'
import type { SessionLedger } from '../../src/capture/session-ledger.js'
import { createSessionWatch } from '../../src/capture/session-watch.js'
import type { WatchedRequest } from '../../src/capture/session-watch.js'
import type { AuditEvent } from '../../src/types.js'
import { sleep } from '../helpers/eventually.js'

const USER = { user: { username: 'alice', userId: '7', profile: {} }, auditSessionId: 'hash-S', ip: '192.0.2.1', userAgent: 'curl/8' }
const request = (sessionID: string, cookie?: string): WatchedRequest => ({ sessionID, session: { cookie: { originalMaxAge: 60_000 } }, headers: { cookie } })

describe('the session watch during a logout', () => {
  it('reports nothing for the cookie of a session it logged out, while the removal is still on its way to the ledger', async () => {
    const memory = createMemoryLedger()
    // A ledger whose removals take their time (a busy database): the session's row is still there.
    let release = (): void => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    const ledger: SessionLedger = { ...memory, remove: async (sessionId) => (await held, memory.remove(sessionId)) }
    const recorded: AuditEvent[] = []
    const watch = createSessionWatch({
      ledger,
      record: (event) => recorded.push(event),
      // The store has lost the session: passport's regenerate destroyed it.
      store: () => ({ get: (_sid: string, callback: (err: unknown, session?: unknown) => void) => callback(null, undefined) }) as never,
      cookieName: 'connect.sid',
      absoluteMs: 0,
      sweepIntervalMs: 60_000,
      warn: () => {},
    })
    watch.loggedIn(request('S'), USER)
    const done = watch.loggingOut(request('S'))
    watch.destroyed('S')
    expect(done(false)).toBe(true)
    // The browser's next request carries the old cookie (a logout sets none), in a new session.
    watch.arrived(request('new', 'connect.sid=s%3AS.signature'))
    await sleep(50)
    release()
    await sleep(50)
    expect(recorded.map((event) => event.type)).toEqual([])
    await watch.stop()
  })
})

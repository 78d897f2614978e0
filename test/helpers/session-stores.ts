import { createClient } from 'redis'
import { openSessionStore } from '../../demo/session-store.js'
import type { OpenedSessionStore, SessionStoreKind } from '../../demo/session-store.js'
import { POSTGRES_URL, probe } from './databases.js'

export const REDIS_URL = process.env.AUTHTRAIL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

/** A session store the demo can use, with what it needs to point at the test's own namespace. */
export interface TestSessionStore {
  readonly kind: SessionStoreKind
  /** Why it cannot run here, or undefined when it can. */
  readonly unavailable: string | undefined
  readonly url: string
  /** Opens it in `namespace` (a PostgreSQL schema that must exist, or a Redis key prefix). */
  open(namespace: string): Promise<OpenedSessionStore>
}

const redisUnavailable = await probe(async () => {
  const client = createClient({ url: REDIS_URL, socket: { connectTimeout: 3000, reconnectStrategy: false } })
  client.on('error', () => {})
  await client.connect()
  await client.quit()
}, `Redis at ${REDIS_URL}`)

/** MemoryStore, connect-pg-simple and connect-redis. */
export const SESSION_STORES: readonly TestSessionStore[] = [
  { kind: 'memory', unavailable: undefined, url: '', open: () => openSessionStore('memory') },
  // PostgreSQL's availability is the audit database's: the store tests use both.
  { kind: 'postgres', unavailable: undefined, url: POSTGRES_URL, open: (namespace) => openSessionStore('postgres', POSTGRES_URL, namespace) },
  { kind: 'redis', unavailable: redisUnavailable, url: REDIS_URL, open: (namespace) => openSessionStore('redis', REDIS_URL, namespace) },
]

/**
 * The demo's session store, chosen by the environment so the same demo runs on each store authtrail
 * supports: SESSION_STORE = memory (default), postgres (connect-pg-simple) or redis (connect-redis), with
 * SESSION_STORE_URL, and SESSION_STORE_NAMESPACE (a PostgreSQL schema, or a Redis key prefix) so that
 * test runs sharing a server do not see each other's sessions.
 */
import session from 'express-session'
import connectPgSimple from 'connect-pg-simple'
import { RedisStore } from 'connect-redis'
import { createClient } from 'redis'

export type SessionStoreKind = 'memory' | 'postgres' | 'redis'

export interface OpenedSessionStore {
  readonly store: session.Store
  close(): Promise<void>
}

export async function openSessionStore(kind: SessionStoreKind, url = '', namespace = ''): Promise<OpenedSessionStore> {
  switch (kind) {
    case 'memory':
      return { store: new session.MemoryStore(), close: async () => {} }
    case 'postgres': {
      const PgStore = connectPgSimple(session)
      const store = new PgStore({
        conString: url || 'postgres://postgres@127.0.0.1:5432/test',
        ...(namespace ? { schemaName: namespace } : {}),
        createTableIfMissing: true,
        // The store's own cleanup; authtrail does not depend on it either way.
        pruneSessionInterval: 60,
      })
      return { store, close: async () => store.close() }
    }
    case 'redis': {
      const client = createClient({ url: url || 'redis://127.0.0.1:6379' })
      client.on('error', () => {}) // reported through the store's callbacks instead
      await client.connect()
      return { store: new RedisStore({ client, prefix: `${namespace || 'authtrail-demo'}:sess:` }), close: async () => void (await client.quit()) }
    }
  }
}

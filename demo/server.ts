/**
 * `npm start`: the demo on 127.0.0.1, logging to the embedded store in data/.
 * Environment: PORT (3000), SESSION_TIMEOUT_SECONDS (300), AUTHTRAIL_CONFIG
 * (config/generalapp.properties), TRUST_PROXY (unset: X-Forwarded-For is ignored), SESSION_STORE
 * (memory, postgres or redis; see session-store.ts), SESSION_STORE_URL, SESSION_STORE_NAMESPACE and
 * SESSION_SECRET (instances sharing a store must share it).
 */
import express from 'express'
import { createDemo } from './app.js'
import { openSessionStore } from './session-store.js'
import type { SessionStoreKind } from './session-store.js'

function integerEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    console.error(`demo: environment variable ${name} = ${JSON.stringify(raw)}: expected a whole number from ${min} to ${max}`)
    process.exit(2)
  }
  return value
}

const port = integerEnv('PORT', 3000, 0, 65535)
const sessionTimeoutSeconds = integerEnv('SESSION_TIMEOUT_SECONDS', 300, 1, 7 * 24 * 3600)
const storeKind = (process.env.SESSION_STORE || 'memory') as SessionStoreKind
if (!['memory', 'postgres', 'redis'].includes(storeKind)) {
  console.error(`demo: environment variable SESSION_STORE = ${JSON.stringify(storeKind)}: expected memory, postgres or redis`)
  process.exit(2)
}

try {
  const sessions = await openSessionStore(storeKind, process.env.SESSION_STORE_URL, process.env.SESSION_STORE_NAMESPACE)
  const { app, audit } = await createDemo({
    store: sessions.store,
    ...(process.env.SESSION_SECRET ? { sessionSecret: process.env.SESSION_SECRET } : {}),
    express,
    config: process.env.AUTHTRAIL_CONFIG || 'config/generalapp.properties',
    sessionTimeoutSeconds,
    ...(process.env.TRUST_PROXY ? { trustProxy: process.env.TRUST_PROXY } : {}),
    sweepIntervalMs: Math.min(5000, sessionTimeoutSeconds * 250),
  })
  const server = app.listen(port, '127.0.0.1', () => {
    const address = server.address()
    const actual = typeof address === 'object' && address ? address.port : port
    console.log(`demo: listening on http://127.0.0.1:${actual}/ (demo users: alice / wonderland, admin / change-me; demo only)`)
    console.log(`demo: audit ${audit.enabled ? `records go to ${audit.config.proc}; read them with: npx authtrail query` : 'logging is off'}`)
  })
  const shutdown = (signal: string) => {
    console.log(`demo: ${signal}, flushing the audit trail`)
    server.close()
    audit.close().then(() => sessions.close()).then(() => process.exit(0), (err) => {
      console.error(err)
      process.exit(1)
    })
  }
  process.once('SIGINT', () => shutdown('SIGINT'))
  process.once('SIGTERM', () => shutdown('SIGTERM'))
} catch (err) {
  // Configuration errors already name the file, key and value; a stack trace would only hide that.
  console.error((err as Error).message)
  process.exit(1)
}

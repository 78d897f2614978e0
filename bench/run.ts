/**
 * npm run bench: every benchmark, each figure a ratio against a baseline measured in the same run.
 * Builds first so the servers run the compiled demo, as `npm start` does.
 */
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { benchAuditQuery } from './audit-query.js'
import { benchDatabaseThread } from './database-thread.js'
import { benchLoginEmbedded } from './login-embedded.js'
import { benchLoginPostgres } from './login-postgres.js'
import { benchPostgresDelivery } from './postgres-delivery.js'

execFileSync('npm', ['run', 'build'], { stdio: 'inherit' })
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, node ${process.version}, ${new Date().toISOString()}`)
console.log('\nlogin throughput, demo with authtrail (embedded store) vs the same demo with security.logging.proc empty:')
console.table(await benchLoginEmbedded())
console.log('\nlogin throughput and outage memory, demo with authtrail (PostgreSQL) vs the same demo without:')
console.table(await benchLoginPostgres())
console.log('\nthe database thread\'s work per event with the embedded store (PGlite), best of 5:')
console.table(await benchDatabaseThread())
console.log('\ndelivery into PostgreSQL: authtrail batched path vs one CALL per event vs COPY:')
console.table(await benchPostgresDelivery())
console.log('\none page (100 rows) of the admin page\'s filtered views on 1,000,000 rows in PostgreSQL:')
console.table(await benchAuditQuery())

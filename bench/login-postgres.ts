/**
 * The demo with authtrail writing to PostgreSQL against the same demo with security.logging.proc
 * empty, in one run: login requests/s and p99. Then memory: the audited demo's RSS growth during a
 * database outage (BENCH_OUTAGE_S, default 60 s) at full login load, against the baseline's RSS growth
 * under the same load; the backlog should go to the spool, not the heap. For the memory runs both
 * demos get --max-old-space-size=256, so that V8 collects garbage rather than growing the heap, and RSS
 * tracks what is retained (an unbounded backlog would end the process).
 *
 * Run: npm run bench (or: npm run build && node --import tsx bench/login-postgres.ts)
 */
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { tcpProxy } from '../test/helpers/tcp-proxy.js'
import { compareLogins, loginLoad, loginRows, rssMiB, startDemo, stopDemo } from './demo-server.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10)
const OUTAGE_S = Number(process.env.BENCH_OUTAGE_S ?? 60)

function spoolMiB(dir: string): number {
  const spool = path.join(dir, 'spool')
  const bytes = readdirSync(spool).reduce((sum, name) => sum + statSync(path.join(spool, name)).size, 0)
  return Math.round(bytes / (1 << 20))
}

export async function benchLoginPostgres(): Promise<Record<string, string | number>> {
  const admin = new pg.Client({ connectionString: URL })
  await admin.connect()
  const schema = `bench_${randomBytes(3).toString('hex')}`
  await admin.query(`CREATE SCHEMA ${schema}; SET search_path TO ${schema}`)
  await admin.query(readFileSync(path.join(ROOT, 'procedures/securitylogging.sql'), 'utf8'))
  const proxy = await tcpProxy(Number(new globalThis.URL(URL).port || 5432))
  const baseline = await startDemo('baseline', { 'security.logging.proc': '' })
  const properties = {
    'security.logging.proc': `${schema}.securitylogging`,
    'security.logging.db': URL.replace(/:\d+\//, `:${proxy.port}/`),
  }
  const audited = await startDemo('postgres', properties)
  try {
    // The control goes through the same proxy: its copying is part of the audited demo's cost too.
    const comparison = await compareLogins(baseline, audited, DURATION_S, 3, properties)

    // Memory under the same full load, heap capped: the baseline, then the audited app with its database down.
    const capped = ['--max-old-space-size=256']
    const memoryBase = await startDemo('memory-baseline', { 'security.logging.proc': '' }, capped)
    const memoryAudit = await startDemo('memory-postgres', { 'security.logging.proc': `${schema}.securitylogging`, 'security.logging.db': URL.replace(/:\d+\//, `:${proxy.port}/`) }, capped)
    let baseBefore: number, baseAfter: number, auditBefore: number, auditAfter: number, spool: number, outage: Awaited<ReturnType<typeof loginLoad>>
    try {
      baseBefore = rssMiB(memoryBase.child.pid!)
      await loginLoad(memoryBase.url, OUTAGE_S)
      baseAfter = rssMiB(memoryBase.child.pid!)
      await proxy.down()
      auditBefore = rssMiB(memoryAudit.child.pid!)
      outage = await loginLoad(memoryAudit.url, OUTAGE_S)
      auditAfter = rssMiB(memoryAudit.child.pid!)
      spool = spoolMiB(memoryAudit.dir)
      await proxy.up()
    } finally {
      await stopDemo(memoryBase)
      await stopDemo(memoryAudit)
    }
    return {
      ...loginRows('PostgreSQL', comparison),
      [`logins during a ${OUTAGE_S} s outage`]: outage.requests.total,
      'login req/s during the outage': Math.round(outage.requests.average),
      [`RSS growth MiB, baseline under ${OUTAGE_S} s of load (heap capped at 256 MiB)`]: baseAfter - baseBefore,
      [`RSS growth MiB, audited during the ${OUTAGE_S} s outage (heap capped at 256 MiB)`]: auditAfter - auditBefore,
      'audited process alive after the outage': outage.errors === 0 ? 'yes' : `no (${outage.errors} errors)`,
      'spool MiB at the end of the outage': spool,
    }
  } finally {
    await stopDemo(baseline)
    await stopDemo(audited)
    await proxy.close()
    await admin.query(`DROP SCHEMA ${schema} CASCADE`)
    await admin.end()
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.table(await benchLoginPostgres())
}

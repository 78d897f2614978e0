/**
 * Login throughput of the demo with authtrail writing to the embedded store, against the same demo with
 * security.logging.proc empty, in one run. Each server is a child process (the audited one with its
 * PGlite worker thread).
 *
 * Run: npm run bench (or: npm run build && node --import tsx bench/login-embedded.ts)
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { compareLogins, loginRows, startDemo, stopDemo } from './demo-server.js'

const DURATION_S = Number(process.env.BENCH_DURATION ?? 10)

export async function benchLoginEmbedded(): Promise<Record<string, string | number>> {
  const baseline = await startDemo('baseline', { 'security.logging.proc': '' })
  const properties = { 'security.logging.proc': 'dbo.securitylogging', 'security.logging.embedded.dir': 'data' }
  const audited = await startDemo('audited', properties)
  try {
    return loginRows('embedded PGlite', await compareLogins(baseline, audited, DURATION_S, 3, properties))
  } finally {
    await stopDemo(baseline)
    await stopDemo(audited)
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.table(await benchLoginEmbedded())
}

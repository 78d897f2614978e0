/**
 * Login throughput of the demo with authtrail writing to the embedded store, against the same demo with
 * security.logging.proc empty, in one run. Each server is a child process (the audited one with its
 * PGlite worker thread).
 *
 * Run: npm run bench (or: npm run build && node --import tsx bench/login-embedded.ts)
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loginLoad, startDemo, stopDemo } from './demo-server.js'

const DURATION_S = Number(process.env.BENCH_DURATION ?? 15)

export async function benchLoginEmbedded(): Promise<Record<string, string | number>> {
  const baseline = await startDemo('baseline', { 'security.logging.proc': '' })
  const audited = await startDemo('audited', { 'security.logging.proc': 'dbo.securitylogging', 'security.logging.embedded.dir': 'data' })
  try {
    // Warm both (JIT, PGlite's first statements), then measure one after the other.
    await loginLoad(baseline.url, DURATION_S)
    await loginLoad(audited.url, DURATION_S)
    const base = await loginLoad(baseline.url, DURATION_S)
    const audit = await loginLoad(audited.url, DURATION_S)
    return {
      'login req/s without audit': Math.round(base.requests.average),
      'login req/s with audit (embedded PGlite)': Math.round(audit.requests.average),
      'ratio req/s (audit / none)': Number((audit.requests.average / base.requests.average).toFixed(3)),
      'p99 ms without audit': base.latency.p99,
      'p99 ms with audit': audit.latency.p99,
      'p99 difference ms': audit.latency.p99 - base.latency.p99,
      'errors (audit run)': audit.errors + audit.non2xx - audit['3xx'],
    }
  } finally {
    await stopDemo(baseline)
    await stopDemo(audited)
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.table(await benchLoginEmbedded())
}

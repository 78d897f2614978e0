/**
 * Login throughput of the demo with authtrail writing to the embedded store, against the same demo with
 * security.logging.proc empty, in one run. Each server is a child process (the audited one with its
 * PGlite worker thread); autocannon drives POST /login on loopback with a successful and a failed login
 * alternating, so LOGIN and LOGINERROR events are both produced.
 *
 * Run: npm run bench (or: node --import tsx bench/login-embedded.ts)
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const DURATION_S = Number(process.env.BENCH_DURATION ?? 15)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20)

interface Server {
  readonly url: string
  readonly child: ChildProcess
  readonly dir: string
}

async function startDemo(name: string, proc: string): Promise<Server> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `authtrail-bench-${name}-`))
  mkdirSync(path.join(dir, 'config'))
  writeFileSync(path.join(dir, 'config/generalapp.properties'), `security.logging.proc = ${proc}\nsecurity.logging.embedded.dir = data\n`)
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/demo/server.js')], {
    cwd: dir,
    env: { ...process.env, PORT: '0', SESSION_TIMEOUT_SECONDS: '300', AUTHTRAIL_SESSION_KEY: 'bench-key-0123456789abcdef0123456789' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const url = await new Promise<string>((resolve, reject) => {
    let output = ''
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening on (http:\/\/[\d.:]+)\//.exec(output)
      if (match) resolve(match[1]!)
    })
    child.once('exit', (code) => reject(new Error(`${name} demo exited with ${code}: ${output}`)))
  })
  return { url, child, dir }
}

async function stop(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve))
  server.child.kill('SIGTERM')
  await exited
  rmSync(server.dir, { recursive: true, force: true })
}

function load(url: string): Promise<autocannon.Result> {
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [
      { method: 'POST', path: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' }, body: 'username=alice&password=wonderland' },
      { method: 'POST', path: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'curl/8.5.0' }, body: 'username=alice&password=not-the-password' },
    ],
  })
}

export async function benchLoginEmbedded(): Promise<Record<string, string | number>> {
  const baseline = await startDemo('baseline', '')
  const audited = await startDemo('audited', 'dbo.securitylogging')
  try {
    // Warm both (JIT, PGlite's first statements), then measure alternately to share machine noise.
    await load(baseline.url)
    await load(audited.url)
    const base = await load(baseline.url)
    const audit = await load(audited.url)
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
    await stop(baseline)
    await stop(audited)
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.table(await benchLoginEmbedded())
}

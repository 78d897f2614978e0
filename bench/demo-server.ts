/** Helpers shared by the HTTP benchmarks: the compiled demo as a child process, and autocannon load. */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

export interface DemoServer {
  readonly url: string
  readonly child: ChildProcess
  readonly dir: string
}

/** A fresh directory holding config/generalapp.properties with these properties. */
function benchDirectory(name: string, properties: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `authtrail-bench-${name}-`))
  mkdirSync(path.join(dir, 'config'))
  writeFileSync(path.join(dir, 'config/generalapp.properties'), Object.entries(properties).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n')
  return dir
}

/** Starts dist/demo/server.js in a fresh directory with these properties (and Node flags, if any). */
export async function startDemo(name: string, properties: Record<string, string>, nodeArgs: readonly string[] = []): Promise<DemoServer> {
  const dir = benchDirectory(name, properties)
  const child = spawn(process.execPath, [...nodeArgs, path.join(ROOT, 'dist/demo/server.js')], {
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

export async function stopDemo(server: DemoServer): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve))
  server.child.kill('SIGTERM')
  await exited
  rmSync(server.dir, { recursive: true, force: true })
}

/** A {@link startNeighbour} process. */
export interface Neighbour {
  readonly child: ChildProcess
  readonly dir: string
}

/**
 * Starts bench/database-neighbour.ts in a fresh directory with these properties (the audited demo's):
 * the audit database's work at `rate` events per second, in a process of its own.
 */
export async function startNeighbour(properties: Record<string, string>, rate: number): Promise<Neighbour> {
  const dir = benchDirectory('neighbour', properties)
  // By its resolved URL: the neighbour runs in a directory of its own, where tsx cannot be found by name.
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'bench/database-neighbour.ts'), String(Math.round(rate))], {
    cwd: dir,
    env: { ...process.env, AUTHTRAIL_SESSION_KEY: 'bench-key-0123456789abcdef0123456789' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve())
    child.once('exit', (code) => reject(new Error(`database neighbour exited with ${code}`)))
  })
  return { child, dir }
}

/** Stops a neighbour; returns how many events it delivered. */
export async function stopNeighbour(neighbour: Neighbour): Promise<string> {
  let output = ''
  neighbour.child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const exited = new Promise((resolve) => neighbour.child.once('exit', resolve))
  neighbour.child.kill('SIGTERM')
  await exited
  rmSync(neighbour.dir, { recursive: true, force: true })
  return output.trim()
}

/** Resident memory of a process, in MiB. */
export function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Math.round(Number(match?.[1] ?? 0) / 1024)
}

/**
 * Logins on loopback, a successful and a failed one alternating, so LOGIN and LOGINERROR both occur.
 * Without `rate`, as fast as the server answers (throughput); with it, that many requests per second
 * in all (latency at a given load, where a p99 compares what each login costs rather than queueing).
 */
export function loginLoad(url: string, seconds: number, connections = 20, rate?: number): Promise<autocannon.Result> {
  return autocannon({
    url,
    connections,
    duration: seconds,
    ...(rate !== undefined ? { overallRate: rate } : {}),
    requests: [
      { method: 'POST', path: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' }, body: 'username=alice&password=wonderland' },
      { method: 'POST', path: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'curl/8.5.0' }, body: 'username=alice&password=not-the-password' },
    ],
  })
}

/**
 * CPU time (user + system) a process has used, in ms: all its threads, or with `mainThread` only the
 * thread that runs the event loop (its thread id is the process id).
 */
export function cpuMs(pid: number, mainThread = false): number {
  // Fields 14 and 15 of /proc/<pid>/stat, after the command name in parentheses; in clock ticks (100/s).
  const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** One side of {@link compareLogins}: medians over the rounds. */
export interface LoginFigures {
  readonly requestsPerSecond: number
  readonly p99Ms: number
  /** At a fixed rate of half the baseline's throughput: p50 and p99 in ms. */
  readonly paced: { readonly rate: number; readonly p50Ms: number; readonly p99Ms: number }
  /** Server CPU (all its threads) per request, in µs: steadier than req/s on a shared machine. */
  readonly cpuMicrosPerRequest: number
  /** CPU of the event loop's thread per request, in µs: what a login costs the thread that answers it. */
  readonly loopMicrosPerRequest: number
  readonly errors: number
}

/**
 * Login load on two demos, warmed once each, then measured in alternating rounds (baseline, audited,
 * baseline, ...) so that drift of a shared machine falls on both sides; reports the medians and the
 * median of the per-round ratios.
 */
export async function compareLogins(
  baseline: DemoServer,
  audited: DemoServer,
  seconds: number,
  rounds = 3,
  /** The audited demo's properties: each round also measures the baseline beside a {@link startNeighbour} at the audited rate. */
  neighbourProperties?: Record<string, string>,
): Promise<{ baseline: LoginFigures; audited: LoginFigures; ratio: number; cpuRatio: number; pacedP99DifferenceMs: number; neighbour: { ratio: number; p99Ms: number; delivered: string } | undefined }> {
  await loginLoad(baseline.url, seconds)
  await loginLoad(audited.url, seconds)
  const measure = async (server: DemoServer) => {
    const before = cpuMs(server.child.pid!)
    const loopBefore = cpuMs(server.child.pid!, true)
    const result = await loginLoad(server.url, seconds)
    const cpu = cpuMs(server.child.pid!) - before
    const loop = cpuMs(server.child.pid!, true) - loopBefore
    const requests = Math.max(1, result.requests.total)
    return { result, cpuMicrosPerRequest: (cpu * 1000) / requests, loopMicrosPerRequest: (loop * 1000) / requests }
  }
  const base: Array<Awaited<ReturnType<typeof measure>>> = []
  const audit: typeof base = []
  const beside: typeof base = []
  let delivered = ''
  for (let round = 0; round < rounds; round++) {
    base.push(await measure(baseline))
    audit.push(await measure(audited))
    if (neighbourProperties) {
      // The database's work at the rate the audited demo just reached, done by another process.
      const neighbour = await startNeighbour(neighbourProperties, audit[round]!.result.requests.average)
      try {
        beside.push(await measure(baseline))
      } finally {
        delivered = await stopNeighbour(neighbour)
      }
    }
  }
  // The same servers at a fixed rate, half of what the baseline reached: both have room to spare.
  const rate = Math.max(100, Math.round(median(base.map((r) => r.result.requests.average)) / 2 / 100) * 100)
  const pacedBase: autocannon.Result[] = []
  const pacedAudit: autocannon.Result[] = []
  for (let round = 0; round < rounds; round++) {
    pacedBase.push(await loginLoad(baseline.url, seconds, 20, rate))
    pacedAudit.push(await loginLoad(audited.url, seconds, 20, rate))
  }
  const paced = (runs: readonly autocannon.Result[]): LoginFigures['paced'] => ({
    rate,
    p50Ms: median(runs.map((r) => r.latency.p50)),
    p99Ms: median(runs.map((r) => r.latency.p99)),
  })
  const figures = (runs: typeof base, pacedRuns: readonly autocannon.Result[]): LoginFigures => ({
    requestsPerSecond: Math.round(median(runs.map((r) => r.result.requests.average))),
    p99Ms: median(runs.map((r) => r.result.latency.p99)),
    paced: paced(pacedRuns),
    cpuMicrosPerRequest: Math.round(median(runs.map((r) => r.cpuMicrosPerRequest))),
    loopMicrosPerRequest: Math.round(median(runs.map((r) => r.loopMicrosPerRequest))),
    errors: runs.reduce((sum, r) => sum + r.result.errors + r.result.non2xx - r.result['3xx'], 0),
  })
  return {
    baseline: figures(base, pacedBase),
    audited: figures(audit, pacedAudit),
    pacedP99DifferenceMs: median(pacedBase.map((b, i) => pacedAudit[i]!.latency.p99 - b.latency.p99)),
    ratio: Number(median(base.map((b, i) => audit[i]!.result.requests.average / b.result.requests.average)).toFixed(3)),
    cpuRatio: Number(median(base.map((b, i) => audit[i]!.cpuMicrosPerRequest / b.cpuMicrosPerRequest)).toFixed(3)),
    neighbour: beside.length === 0 ? undefined : {
      ratio: Number(median(base.map((b, i) => beside[i]!.result.requests.average / b.result.requests.average)).toFixed(3)),
      p99Ms: median(beside.map((r) => r.result.latency.p99)),
      delivered,
    },
  }
}

/** The rows every login benchmark prints, for a comparison made by {@link compareLogins}. */
export function loginRows(label: string, comparison: Awaited<ReturnType<typeof compareLogins>>): Record<string, string | number> {
  const { baseline, audited } = comparison
  return {
    'login req/s without audit': baseline.requestsPerSecond,
    [`login req/s with audit (${label})`]: audited.requestsPerSecond,
    'ratio req/s (audit / none), median of rounds': comparison.ratio,
    'p99 ms without audit': baseline.p99Ms,
    'p99 ms with audit': audited.p99Ms,
    'p99 difference ms': audited.p99Ms - baseline.p99Ms,
    'server CPU µs per login without audit': baseline.cpuMicrosPerRequest,
    'server CPU µs per login with audit': audited.cpuMicrosPerRequest,
    'CPU ratio (audit / none)': comparison.cpuRatio,
    'event-loop thread CPU µs per login without / with audit': `${baseline.loopMicrosPerRequest} / ${audited.loopMicrosPerRequest}`,
    [`at ${baseline.paced.rate} req/s: p50 ms without / with audit`]: `${baseline.paced.p50Ms} / ${audited.paced.p50Ms}`,
    [`at ${baseline.paced.rate} req/s: p99 ms without / with audit`]: `${baseline.paced.p99Ms} / ${audited.paced.p99Ms}`,
    [`at ${baseline.paced.rate} req/s: p99 difference ms (median of rounds)`]: comparison.pacedP99DifferenceMs,
    'errors (audit runs)': audited.errors,
    ...(comparison.neighbour ? {
      'control: req/s of the demo without audit, beside another process doing the database\'s work at the audited rate / alone': comparison.neighbour.ratio,
      'control: p99 ms of that run': comparison.neighbour.p99Ms,
      'control: neighbour in its last round': comparison.neighbour.delivered,
    } : {}),
  }
}

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

/** Starts dist/demo/server.js in a fresh directory with these properties (and Node flags, if any). */
export async function startDemo(name: string, properties: Record<string, string>, nodeArgs: readonly string[] = []): Promise<DemoServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `authtrail-bench-${name}-`))
  mkdirSync(path.join(dir, 'config'))
  writeFileSync(path.join(dir, 'config/generalapp.properties'), Object.entries(properties).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n')
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

/** Resident memory of a process, in MiB. */
export function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Math.round(Number(match?.[1] ?? 0) / 1024)
}

/** Logins on loopback, a successful and a failed one alternating, so LOGIN and LOGINERROR both occur. */
export function loginLoad(url: string, seconds: number, connections = 20): Promise<autocannon.Result> {
  return autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      { method: 'POST', path: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' }, body: 'username=alice&password=wonderland' },
      { method: 'POST', path: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': 'curl/8.5.0' }, body: 'username=alice&password=not-the-password' },
    ],
  })
}

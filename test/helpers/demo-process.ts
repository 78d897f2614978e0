import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** The demo server as a separate process (from the sources), in `cwd` with its own properties file. */
export async function startDemoProcess(cwd: string, env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess; output: () => string; stop(signal?: NodeJS.Signals): Promise<number | null> }> {
  // Node itself with tsx's loader, not the tsx CLI: the CLI runs the script in a child process, so a
  // signal sent to it would not reach the server.
  const child = spawn(process.execPath, ['--import', pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, path.join(ROOT, 'demo/server.ts')], {
    cwd,
    env: { ...process.env, PORT: '0', SESSION_TIMEOUT_SECONDS: '600', AUTHTRAIL_SESSION_KEY: 'test-key-0123456789abcdef0123456789abcdef', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const url = await new Promise<string>((resolve, reject) => {
    const onData = () => {
      const match = /listening on (http:\/\/[\d.:]+)\//.exec(output)
      if (match) resolve(match[1]!)
    }
    child.stdout!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`demo exited with ${code}: ${output}`)))
  })
  return {
    url,
    child,
    output: () => output,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode)
        child.once('exit', (code) => resolve(code))
        child.kill(signal)
      }),
  }
}

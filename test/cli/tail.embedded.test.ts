import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { client } from '../helpers/browser-like-client.js'
import { eventually } from '../helpers/eventually.js'
import { startRunningDemo } from '../helpers/running-demo.js'
import type { RunningDemo } from '../helpers/running-demo.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** The CLI as a long-running process (node with tsx's loader, so that SIGINT reaches it). */
function startCli(args: readonly string[], cwd: string) {
  const child = spawn(process.execPath, ['--import', pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, path.join(ROOT, 'src/cli/bin.ts'), ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, exited, stdout: () => stdout, stderr: () => stderr }
}

describe('authtrail tail', () => {
  let running: RunningDemo

  beforeAll(async () => {
    running = await startRunningDemo()
    await client(running.url).post('/login', { username: 'alice', password: 'nope' })
    await client(running.url).post('/login', { username: 'admin', password: 'change-me' })
    await running.demo.audit.flush()
  })
  afterAll(async () => {
    await running?.close()
  })

  it('prints the last records, follows new ones matching the filter, and exits 0 on SIGINT', async () => {
    const tail = startCli(['tail', '--lines', '1', '--interval', '200', '--format', 'json', '--type', 'LOGIN,LOGINERROR'], running.project.dir)
    try {
      const lines = () => tail.stdout().trim().split('\n').filter(Boolean).map((line) => JSON.parse(line))
      await eventually(async () => expect(lines().map((r) => [r.type, r.username])).toEqual([['LOGIN', 'admin']]), 30_000)
      // Started reading: recorded.
      await eventually(async () => expect((await running.demo.audit.query({ types: ['AUDIT_ACCESS'] }))[0]?.data).toContain('<Action>tail</Action>'))
      const browser = client(running.url)
      await browser.post('/login', { username: 'alice', password: 'wonderland' })
      await browser.post('/logout')
      await client(running.url).post('/login', { username: 'bob', password: 'x' })
      await eventually(async () => expect(lines().map((r) => [r.type, r.username])).toEqual([['LOGIN', 'admin'], ['LOGIN', 'alice'], ['LOGINERROR', 'bob']]), 15_000)
      tail.child.kill('SIGINT')
      expect(await tail.exited).toBe(0)
      expect(tail.stderr()).toBe('')
    } finally {
      tail.child.kill('SIGKILL')
    }
  })
})

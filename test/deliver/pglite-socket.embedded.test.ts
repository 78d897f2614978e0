import { statSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openEmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import type { EmbeddedStore } from '../../src/deliver/pglite/embedded-store.js'
import { askThroughSocket } from '../../src/deliver/pglite/socket-client.js'
import { readLockHolder } from '../../src/deliver/pglite/store-lock.js'
import { queryAudit } from '../../src/review/audit-query.js'
import { packageFile } from '../../src/package-files.js'
import { tempProject } from '../helpers/temp-project.js'
import type { TempProject } from '../helpers/temp-project.js'

describe('the embedded store\'s query socket', () => {
  let project: TempProject
  let store: EmbeddedStore | undefined
  afterEach(async () => {
    await store?.close()
    store = undefined
    project?.remove()
  })
  const open = async (dir: string) => {
    store = await openEmbeddedStore({ dir, schema: 'dbo', table: 'dbo.securitylog', installFile: packageFile('procedures/securitylogging.sql'), serve: true, proc: 'dbo.securitylogging' })
    return { store, socket: readLockHolder(dir)!.socket }
  }

  it('is its owner\'s only, in a directory that is its owner\'s only', async () => {
    project = tempProject()
    const dir = path.join(project.dir, 'data')
    const { socket } = await open(dir)
    expect(socket).toBe(path.join(dir, 'authtrail.sock'))
    expect(statSync(socket).mode & 0o777).toBe(0o600)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
  })

  it('goes into a private directory of its own when the store\'s path is too long for a socket', async () => {
    project = tempProject()
    const dir = path.join(project.dir, 'a-directory-name-long-enough-'.repeat(3), 'data')
    const { socket } = await open(dir)
    expect(path.dirname(socket)).not.toBe(dir)
    expect(statSync(path.dirname(socket)).mode & 0o777).toBe(0o700)
    await store!.close()
    store = undefined
    expect(() => statSync(path.dirname(socket))).toThrow(/ENOENT/)
  })

  it('lets no idle connection hold up the store\'s close', async () => {
    project = tempProject()
    const { socket } = await open(path.join(project.dir, 'data'))
    const idle = net.connect(socket)
    idle.on('error', () => {}) // reset by the store's close, which is the point
    await new Promise((resolve) => idle.once('connect', resolve))
    const started = Date.now()
    await store!.close()
    store = undefined
    expect(Date.now() - started).toBeLessThan(5_000)
    idle.destroy()
  })

  it('records what a CLI read, with the app\'s own id, time and channel: a client cannot forge them', async () => {
    project = tempProject()
    const { store, socket } = await open(path.join(project.dir, 'data'))
    const before = Date.now()
    await askThroughSocket(socket, { op: 'record', access: { action: 'query', filter: '{"user":"alice"}', rows: 3, channel: 'web' }, account: 'mallory', host: 'laptop', id: 'forged', time: 0, type: 'LOGIN' })
    await expect(askThroughSocket(socket, { op: 'record', access: { action: 'delete-everything', filter: '', rows: 0 }, account: 'mallory', host: 'laptop' })).rejects.toThrow(/action must be one of/)
    const [row] = await queryAudit(store.client, 'dbo.securitylog', {})
    expect(row).toMatchObject({ type: 'AUDIT_ACCESS', username: 'mallory' })
    expect(Date.parse(row!.time)).toBeGreaterThanOrEqual(before - 1000)
    expect(row!.data).toContain('<Channel>cli</Channel>')
    expect(row!.data).toContain('<Action>query</Action>')
  })
})

import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { acquireLock, LOCK_FILE, readLockHolder } from '../../src/deliver/pglite/store-lock.js'
import { processStamp } from '../../src/deliver/process-alive.js'
import { openSpool } from '../../src/deliver/spool.js'
import { auditEvent } from '../helpers/audit-event.js'
import { recoveredIds } from '../helpers/spool.js'

// A container restarted with its volume runs as pid 1 again: what its killed predecessor left carries
// the same pid, and must not be taken for this process's own.
describe('files left by an earlier process with this process id', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-pid-reuse-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('are replayed from the spool, in the current and the earlier file format', () => {
    const [a, b] = [auditEvent('LOGIN'), auditEvent('LOGOUT')]
    writeFileSync(path.join(dir, `spool-${process.pid}.${processStamp() - 60_000}-1.ndjson`), `E ${JSON.stringify(a)}\n`)
    writeFileSync(path.join(dir, `spool-${process.pid}-2.ndjson`), `E ${JSON.stringify(b)}\n`)
    const spool = openSpool(dir)
    expect(recoveredIds(spool).sort()).toEqual([a!.id, b!.id].sort())
    spool.close()
  })

  it('leave another instance\'s spool in this process alone', () => {
    const other = openSpool(dir)
    other.append(auditEvent('LOGIN'))
    const spool = openSpool(dir)
    expect(recoveredIds(spool)).toEqual([])
    expect(other.stats().pending).toBe(1)
    spool.close()
    other.close()
  })

  it('do not hold the embedded store\'s lock, while another instance of this process does', () => {
    writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, stamp: processStamp() - 60_000, socket: '', since: '2026-11-30T00:00:00.000Z' }))
    expect(readLockHolder(dir)).toBeUndefined()
    const release = acquireLock(dir, '')
    expect(readLockHolder(dir)).toMatchObject({ pid: process.pid, stamp: processStamp() })
    expect(() => acquireLock(dir, '')).toThrow(/in use by another authtrail instance in this process/)
    release()
    expect(readdirSync(dir)).toEqual([])
  })
})

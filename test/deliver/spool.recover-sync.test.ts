import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import * as fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { openSpool } from '../../src/deliver/spool.js'
import { auditEvent } from '../helpers/audit-event.js'
import { recoveredIds } from '../helpers/spool.js'

/** The file-system calls that matter to durability, in the order the spool makes them. */
const calls: string[] = []
vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>()
  return {
    ...real,
    fdatasyncSync: (fd: number) => (calls.push('fdatasync'), real.fdatasyncSync(fd)),
    unlinkSync: (file: fs.PathLike) => (calls.push(`unlink ${path.basename(String(file))}`), real.unlinkSync(file)),
  }
})

/** A process id that is not running. */
const DEAD_PID = 2 ** 22 + 4321

describe('taking over a dead process\'s spool', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-spool-sync-'))
    calls.length = 0
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('has the copies on disk before it removes the files it copied them from: a power loss then loses nothing the dead process had synced', () => {
    const lost = auditEvent('LOGIN')
    // A strict-mode LOGIN: fdatasync'd into the dead process's file before its response went.
    writeFileSync(path.join(dir, `spool-${DEAD_PID}-1.ndjson`), `E ${JSON.stringify(lost)}\n`)
    const spool = openSpool(dir)
    expect(recoveredIds(spool)).toEqual([lost.id])
    expect(calls.filter((call) => call === 'fdatasync' || call.includes('.claimed-'))).toEqual(['fdatasync', expect.stringMatching(/^unlink spool-\d+-1\.ndjson\.claimed-/)])
    spool.close()
  })

  it('syncs nothing when there is nothing to take', () => {
    const spool = openSpool(dir)
    expect(recoveredIds(spool)).toEqual([])
    expect(calls).toEqual([])
    spool.close()
  })
})

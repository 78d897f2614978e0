import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openSpool, readSpoolFile } from '../../src/deliver/spool.js'
import { auditEvent } from '../helpers/audit-event.js'

/** A process id that is not running. */
const DEAD_PID = 2 ** 22 + 12345

describe('the write-ahead spool', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-spool-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('keeps appended events until they are marked done', () => {
    const spool = openSpool(dir)
    const [a, b, c] = [auditEvent('LOGIN'), auditEvent('LOGOUT'), auditEvent('LOGINERROR')]
    for (const e of [a!, b!, c!]) spool.append(e)
    spool.done([b!.id])
    expect(spool.stats().pending).toBe(2)
    const [file] = readdirSync(dir)
    expect(readSpoolFile(path.join(dir, file!)).map((e) => e.id)).toEqual([a!.id, c!.id])
    spool.close()
  })

  it('starts a fresh file once everything in a large one is stored, and leaves nothing after a clean close', () => {
    const spool = openSpool(dir, 200)
    const events = Array.from({ length: 5 }, () => auditEvent('LOGIN'))
    for (const e of events) spool.append(e)
    const first = readdirSync(dir)
    spool.done(events.map((e) => e.id))
    const second = readdirSync(dir)
    expect(second).toHaveLength(1)
    expect(second).not.toEqual(first)
    spool.close()
    expect(readdirSync(dir)).toEqual([])
  })

  it('recovers what a dead process left undone, ignoring a line cut short by the kill, and takes it over', () => {
    const [stored, lost1, lost2] = [auditEvent('LOGIN'), auditEvent('LOGINERROR'), auditEvent('LOGOUT')]
    const orphan = path.join(dir, `spool-${DEAD_PID}-1.ndjson`)
    writeFileSync(orphan, [stored, lost1, lost2].map((e) => `E ${JSON.stringify(e)}\n`).join('') + `A ${stored!.id}\n`)
    appendFileSync(orphan, 'E {"id":"half-writ')
    const spool = openSpool(dir)
    expect(spool.recover().map((e) => e.id)).toEqual([lost1!.id, lost2!.id])
    // The orphan is gone; its events now live in this process's file until they are stored.
    expect(readdirSync(dir)).toHaveLength(1)
    expect(spool.stats().pending).toBe(2)
    // A second look finds nothing more to replay.
    expect(openSpool(dir).recover()).toEqual([])
    spool.close()
  })

  it('leaves the files of live processes alone', () => {
    const live = path.join(dir, `spool-${process.ppid}-1.ndjson`)
    writeFileSync(live, `E ${JSON.stringify(auditEvent('LOGIN'))}\n`)
    const spool = openSpool(dir)
    expect(spool.recover()).toEqual([])
    expect(readdirSync(dir)).toContain(path.basename(live))
    spool.close()
  })
})

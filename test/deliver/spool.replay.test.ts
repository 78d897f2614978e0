import { constants } from 'node:buffer'
import { appendFileSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { forEachUndoneEvent, openSpool } from '../../src/deliver/spool.js'
import { createOutbox } from '../../src/deliver/outbox.js'
import type { Sink } from '../../src/types.js'
import { sleep } from '../helpers/eventually.js'
import { memoryLogger } from '../helpers/temp-project.js'
import { auditEvent } from '../helpers/audit-event.js'
import { recoveredIds } from '../helpers/spool.js'

/** A process id that is not running. */
const DEAD_PID = 2 ** 22 + 12345
/** The ids of the events in a spool file that were never marked done. */
const undoneIds = (file: string): string[] => {
  const ids: string[] = []
  forEachUndoneEvent(file, (event) => ids.push(event.id))
  return ids
}

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
    expect(undoneIds(path.join(dir, file!))).toEqual([a!.id, c!.id])
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
    expect(recoveredIds(spool)).toEqual([lost1!.id, lost2!.id])
    // The orphan is gone; its events now live in this process's file until they are stored.
    expect(readdirSync(dir)).toHaveLength(1)
    expect(spool.stats().pending).toBe(2)
    // A second look finds nothing more to replay.
    expect(recoveredIds(openSpool(dir))).toEqual([])
    spool.close()
  })

  it('recovers from a file longer than the longest string V8 makes, one event at a time', () => {
    const [stored, lost] = [auditEvent('LOGIN'), auditEvent('LOGOUT')]
    const orphan = path.join(dir, `spool-${DEAD_PID}-1.ndjson`)
    writeFileSync(orphan, `E ${JSON.stringify(stored)}\n`)
    // A sparse file: past the string limit without writing 512 MiB to the disk. Its hole reads as NUL bytes.
    truncateSync(orphan, constants.MAX_STRING_LENGTH + (1 << 20))
    appendFileSync(orphan, `\nE ${JSON.stringify(lost)}\nA ${stored.id}\n`)
    const spool = openSpool(dir)
    expect(recoveredIds(spool)).toEqual([lost.id])
    spool.close()
  })

  it('recovers a dead process\'s file that another process claimed and was killed before it was done with', () => {
    const lost = auditEvent('LOGINERROR')
    // Claimed by a process now gone: renamed by its claim, and neither copied whole nor removed.
    writeFileSync(path.join(dir, `spool-${DEAD_PID}-1.ndjson.claimed-${DEAD_PID + 1}.1700000000000`), `E ${JSON.stringify(lost)}\n`)
    const spool = openSpool(dir)
    expect(recoveredIds(spool)).toEqual([lost.id])
    expect(readdirSync(dir)).toHaveLength(1)
    spool.close()
  })

  it('leaves the claims of a live process alone', () => {
    const claim = `spool-${DEAD_PID}-1.ndjson.claimed-${process.ppid}`
    writeFileSync(path.join(dir, claim), `E ${JSON.stringify(auditEvent('LOGIN'))}\n`)
    const spool = openSpool(dir)
    expect(recoveredIds(spool)).toEqual([])
    expect(readdirSync(dir)).toContain(claim)
    spool.close()
  })

  it('leaves the files of live processes alone', () => {
    const live = path.join(dir, `spool-${process.ppid}-1.ndjson`)
    writeFileSync(live, `E ${JSON.stringify(auditEvent('LOGIN'))}\n`)
    const spool = openSpool(dir)
    expect(recoveredIds(spool)).toEqual([])
    expect(readdirSync(dir)).toContain(path.basename(live))
    spool.close()
  })
})

describe('the outbox over the spool', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-spill-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('keeps at most maxQueued events in memory while the sink is down, then delivers all of them in order', async () => {
    const spool = openSpool(dir)
    let down = true
    const stored: string[] = []
    const sink: Sink = {
      description: 'a sink that is down, then up',
      async deliver(batch) {
        if (down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
        stored.push(...batch.map((e) => e.id))
      },
      close: async () => {},
    }
    const outbox = createOutbox({
      sink, logger: memoryLogger(), maxBatch: 7, maxQueued: 20, overflow: spool,
      onStored: (ids) => spool.done(ids), retry: { initialDelayMs: 5, maxDelayMs: 20 },
    })
    const events = Array.from({ length: 150 }, (_, i) => auditEvent('LOGIN', { username: `u${i}` }))
    for (const e of events) outbox.enqueue(e, spool.append(e))
    await sleep(50)
    expect(outbox.metrics().queued).toBe(150)
    expect(outbox.metrics().inMemory).toBeLessThanOrEqual(20)
    down = false
    await outbox.flush()
    expect(stored).toEqual(events.map((e) => e.id))
    expect(spool.stats().pending).toBe(0)
    spool.close()
  })
})

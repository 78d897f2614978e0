import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { takeOverOrphans } from '../../src/deliver/orphan-files.js'

/** A process id that is not running. */
const DEAD_PID = 2 ** 22 + 777
const FILE = /^log-(\d+)-(\d+)\.txt$/

describe('taking over the files of dead processes', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'authtrail-orphans-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('removes what it took only once all of it is settled: a failure before leaves every claimed file, whole', () => {
    for (const n of [1, 2, 3]) writeFileSync(path.join(dir, `log-${DEAD_PID}-${n}.txt`), `file ${n}`)
    const read: string[] = []
    expect(() =>
      takeOverOrphans(dir, FILE, path.join(dir, 'own'), (claimed) => void read.push(readFileSync(claimed, 'utf8')), () => {
        throw new Error('killed before the copy was in place')
      }),
    ).toThrow('killed')
    expect(read.sort()).toEqual(['file 1', 'file 2', 'file 3'])
    const left = readdirSync(dir)
    expect(left).toHaveLength(3)
    expect(left.every((name) => name.includes(`.claimed-${process.pid}.`))).toBe(true)
  })

  it('takes over again what a dead claimer left, under the name its owner gave it, and removes it once settled', () => {
    writeFileSync(path.join(dir, `log-${DEAD_PID}-1.txt.claimed-${DEAD_PID + 1}.1700000000000`), 'first claim')
    writeFileSync(path.join(dir, `log-${DEAD_PID}-2.txt.claimed-${DEAD_PID + 1}`), 'claim written before stamps')
    const claims: string[] = []
    takeOverOrphans(dir, FILE, path.join(dir, 'own'), (claimed) => void claims.push(path.basename(claimed)))
    expect(claims.sort()).toEqual([`log-${DEAD_PID}-1.txt.claimed-${process.pid}.${Math.floor(performance.timeOrigin)}`, `log-${DEAD_PID}-2.txt.claimed-${process.pid}.${Math.floor(performance.timeOrigin)}`])
    expect(readdirSync(dir)).toEqual([])
  })

  it('leaves alone the claims of a live process, and files that only look like claims', () => {
    const names = [`log-${DEAD_PID}-1.txt.claimed-${process.ppid}`, `other-${DEAD_PID}-1.txt.claimed-${DEAD_PID + 1}`]
    for (const name of names) writeFileSync(path.join(dir, name), '')
    takeOverOrphans(dir, FILE, path.join(dir, 'own'), () => {
      throw new Error('nothing to take')
    })
    expect(readdirSync(dir).sort()).toEqual(names.sort())
  })
})

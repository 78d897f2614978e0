import { closeSync, fdatasyncSync, fstatSync, mkdirSync, openSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'
import type { AuditEvent } from '../types.js'
import { eventJson } from './event-json.js'
import { forEachLine } from './file-lines.js'
import { processStamp } from './process-alive.js'
import { takeOverOrphans } from './orphan-files.js'

/**
 * A local write-ahead spool: every event is appended to a file of this process before the login
 * response is sent, and marked done once the procedure has stored it. A process killed with SIGKILL
 * loses nothing it acknowledged: the kernel keeps what write() was given, and the next process to open
 * the directory replays what was never marked done (the procedures ignore a repeated event id, so a
 * replay of an event that was in fact stored does no harm).
 *
 * File format, one line per record: `E <event JSON>` or `A <id>,<id>,...` (done).
 */
export interface Spool {
  /**
   * Appends an event. With `sync`, also waits for the disk (fdatasync), so the event survives a power
   * loss, not only a killed process. Throws when the disk refuses (full, read-only): the caller decides.
   */
  append(event: AuditEvent, sync?: boolean): number
  /**
   * Reads back, from byte `cursor` of this process's file, up to `limit` events not yet done and not in
   * `skip`, in order; returns them and the cursor after the last one read. This is how a backlog larger
   * than the outbox keeps in memory comes back when there is room.
   */
  readFrom(cursor: number, limit: number, skip: ReadonlySet<string>): { events: AuditEvent[]; cursor: number }
  /** Marks events as stored; a file whose events are all stored is replaced by a fresh one past `rotateBytes`. */
  done(ids: readonly string[]): void
  /**
   * Takes over the events that processes now gone left undone: appends each to this spool's own file
   * and hands it to `take` with its position there (see {@link Spool.readFrom}), one at a time, so that
   * a backlog larger than memory can be spilled as it comes. Returns how many were taken.
   */
  recover(take: (event: AuditEvent, position: number) => void): number
  /** Events appended and not yet done, and the size of the current file. */
  stats(): { readonly pending: number; readonly bytes: number }
  close(): void
}

/** `spool-<pid>.<process stamp>-<time and random>.ndjson`; files of earlier versions have no stamp. */
const FILE = /^spool-(\d+)(?:\.(\d+))?-(\d+)\.ndjson$/


/**
 * Hands `take` the events of a spool file that were never marked done, in order. An outage can grow a
 * spool past what one string holds, and its events past what the heap holds: the file is read in
 * pieces, twice, and only the ids of undone events are kept in between.
 */
export function forEachUndoneEvent(file: string, take: (event: AuditEvent) => void): void {
  const fd = openSync(file, 'r')
  try {
    const size = fstatSync(fd).size
    const undone = new Set<string>()
    // Whole lines only: one cut short by a kill mid-write was never acknowledged to anyone.
    forEachLine(fd, 0, size, (line) => {
      if (line.startsWith('E ')) {
        const event = parseEvent(line)
        if (event) undone.add(event.id)
      } else if (line.startsWith('A ')) {
        for (const id of line.slice(2).split(',')) undone.delete(id)
      }
    })
    if (undone.size === 0) return
    forEachLine(fd, 0, size, (line) => {
      if (!line.startsWith('E ')) return
      const event = parseEvent(line)
      // A replay copies events again; the first copy stands for all.
      if (event && undone.delete(event.id)) take(event)
    })
  } finally {
    closeSync(fd)
  }
}

/** The event of an `E` line; undefined for one that is not JSON (cut short, or written over by a crash). */
function parseEvent(line: string): AuditEvent | undefined {
  try {
    return JSON.parse(line.slice(2)) as AuditEvent
  } catch {
    return undefined
  }
}

/**
 * Opens this process's spool file in `dir`. Spool directories are per host: liveness of a file's owner
 * is judged by its process id.
 */
export function openSpool(dir: string, rotateBytes = 1 << 20): Spool {
  mkdirSync(dir, { recursive: true })
  let file = ''
  let fd = -1
  let bytes = 0
  const pending = new Set<string>()
  const write = (text: string): void => {
    bytes += writeSync(fd, text)
  }
  const openFile = (): void => {
    // Time and a random part: two instances in one process get files of their own.
    file = path.join(dir, `spool-${process.pid}.${processStamp()}-${Date.now()}${Math.floor(Math.random() * 1e6)}.ndjson`)
    fd = openSync(file, 'a+', 0o600)
    bytes = 0
  }
  openFile()

  return {
    append(event, sync = false) {
      const position = bytes
      write(`E ${eventJson(event)}\n`)
      if (sync) fdatasyncSync(fd)
      pending.add(event.id)
      return position
    },
    readFrom(cursor, limit, skip) {
      const events: AuditEvent[] = []
      const chunk = Buffer.alloc(1 << 20)
      let carry = Buffer.alloc(0)
      let position = cursor
      while (events.length < limit && position < bytes) {
        const read = readSync(fd, chunk, 0, chunk.length, position + carry.length)
        if (read === 0) break
        const data = Buffer.concat([carry, chunk.subarray(0, read)])
        let start = 0
        for (let newline = data.indexOf(10, start); newline >= 0 && events.length < limit; newline = data.indexOf(10, start)) {
          const line = data.toString('utf8', start, newline)
          start = newline + 1
          if (!line.startsWith('E ')) continue
          const event = JSON.parse(line.slice(2)) as AuditEvent
          if (pending.has(event.id) && !skip.has(event.id)) events.push(event)
        }
        position += start
        carry = data.subarray(start)
      }
      return { events, cursor: position }
    },
    done(ids) {
      if (ids.length === 0 || fd < 0) return
      write(`A ${ids.join(',')}\n`)
      for (const id of ids) pending.delete(id)
      if (pending.size === 0 && bytes >= rotateBytes) {
        // Everything in the file is stored: a fresh file keeps the spool small.
        closeSync(fd)
        unlinkSync(file)
        openFile()
      }
    },
    recover(take) {
      let taken = 0
      takeOverOrphans(dir, FILE, file, (claimed) => {
        forEachUndoneEvent(claimed, (event) => {
          const position = bytes
          write(`E ${JSON.stringify(event)}\n`)
          pending.add(event.id)
          taken++
          take(event, position)
        })
      }, () => {
        // On the disk before the files they came from are removed: a strict-mode LOGIN that the dead
        // process synced must not be lost to a power loss soon after.
        if (taken > 0) fdatasyncSync(fd)
      })
      return taken
    },
    stats() {
      return { pending: pending.size, bytes: fd < 0 ? 0 : statSync(file).size }
    },
    close() {
      if (fd < 0) return
      closeSync(fd)
      fd = -1
      // A clean shutdown with everything stored leaves nothing behind.
      if (pending.size === 0) unlinkSync(file)
    },
  }
}

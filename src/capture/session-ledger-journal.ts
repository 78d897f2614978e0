import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'
import { processStamp } from '../deliver/process-alive.js'
import { removeOrphans, takeOverOrphans } from '../deliver/orphan-files.js'
import { copyBytes, countLines, forEachLine, READ_BYTES, readWholeLines } from '../deliver/file-lines.js'
import type { LedgerEntry } from './session-ledger.js'
import type { LedgerAdd } from './session-ledger-rows.js'
import type { SessionSeal } from './session-seal.js'

/** A session waiting for the ledger table; `replace` is false for an adoption, which never overrides a login. */
export interface JournaledAdd extends LedgerAdd {
  readonly replace: boolean
}

/** What a journal holds, replayed in order: removals cancel the sessions journaled before them. */
export interface JournalBacklog {
  /** By audit session id (the ledger row's key): what is still to be written. */
  readonly adds: ReadonlyMap<string, JournaledAdd>
  /** Audit session ids to delete from the table, each with the journaled session it cancelled, if any. */
  readonly removals: ReadonlyMap<string, LedgerEntry | undefined>
  /** Where this backlog ends (a {@link SessionLedgerJournal.position}), for {@link SessionLedgerJournal.clear}. */
  readonly through: number
}

/**
 * Where the session ledger's writes wait on disk until they are in the table: each login's session is
 * journaled when it is added, so that a process killed before its row was written (or during an outage
 * of any length, which grows this file rather than the heap) loses none of them: the next process to
 * open the directory takes over the journals of processes that are gone. Store ids are sealed (AES-GCM
 * under the session key) before they reach the disk.
 */
export interface SessionLedgerJournal {
  /** Appends sessions and removals (by audit session id); synchronous, like the spool's write. */
  append(adds: readonly JournaledAdd[], removals: readonly string[]): void
  /** Where the journal ends now: what is appended later lies after it, whatever is cleared meanwhile. */
  position(): number
  /** What was journaled up to `upTo` (a {@link position}; everything by default), with removals applied. */
  backlog(upTo?: number): JournalBacklog
  /** What was journaled up to `through` (a {@link position}) is in the table: only what came later is kept. */
  clear(through: number): void
  /** Lines journaled and not yet cleared. */
  readonly size: () => number
  /** Closes the file; an empty journal leaves nothing behind, a full one waits for the next process. */
  close(): void
}

/** `ledger-<pid>.<process stamp>-<time and random>.ndjson` */
const FILE = /^ledger-(\d+)\.(\d+)-(\d+)\.ndjson$/
/**
 * A journal's copy that its owner left, which holds nothing other files do not: a rewrite by
 * {@link SessionLedgerJournal.clear} before its rename over the journal (which is whole until the
 * rename replaces it), or a new journal being filled with the journals it takes over (which are removed
 * only once it is in place).
 */
const COPY = /^ledger-(\d+)\.(\d+)-(\d+)\.ndjson\.(?:next|taking)$/

/**
 * Opens this process's ledger journal in `dir` (the spool directory), taking over the journals of dead
 * processes. `warn` hears of lines that cannot be read back (cut short by a kill, or sealed under
 * another key). Files are read `readBytes` at a time (tests make it small), so that a journal that an
 * outage grew past what one string or buffer can hold is read back all the same.
 */
export function openLedgerJournal(dir: string, seal: SessionSeal, warn: (message: string) => void = () => {}, readBytes = READ_BYTES): SessionLedgerJournal {
  mkdirSync(dir, { recursive: true })
  // Time and a random part: two instances in one process get files of their own.
  const file = path.join(dir, `ledger-${process.pid}.${processStamp()}-${Date.now()}${Math.floor(Math.random() * 1e6)}.ndjson`)
  // Filled under another name with the journals it takes over, and renamed into place once they are all
  // in: a process killed half-way leaves those journals whole for the next one, and no copy of part of
  // them that would replay after them, bringing back a session they went on to remove.
  const taking = `${file}.taking`
  let fd = openSync(taking, 'a+', 0o600)
  let lines = 0
  /** Positions count every byte appended since the journal opened; the file holds those from `start` on. */
  let start = 0
  let end = 0
  const closedError = (): Error => new Error(`authtrail: the session ledger journal ${file} is closed`)
  const write = (text: string): void => {
    if (fd < 0) throw closedError()
    end += writeSync(fd, text)
  }

  removeOrphans(dir, COPY, file)
  takeOverOrphans(dir, FILE, file, (claimed) => {
    const orphan = openSync(claimed, 'r')
    try {
      // Only whole lines: the last one may have been cut short by a kill.
      const { skipped } = readWholeLines(orphan, 0, fstatSync(orphan).size, (whole) => {
        end += writeSync(fd, whole)
        lines += countLines(whole)
      }, readBytes)
      if (skipped > 0) warn(`${skipped} lines of the session ledger journal ${claimed} were too long to be journal lines, and were skipped`)
    } finally {
      closeSync(orphan)
    }
  }, () => renameSync(taking, file))

  return {
    append(adds, removals) {
      if (adds.length === 0 && removals.length === 0) return
      let text = ''
      for (const { sessionId, sealed, entry, replace } of adds) text += `A ${JSON.stringify({ sealed: sealed ?? seal.seal(sessionId), entry, replace })}\n`
      for (const auditSessionId of removals) text += `R ${JSON.stringify(auditSessionId)}\n`
      write(text)
      lines += adds.length + removals.length
    },
    position: () => end,
    backlog(upTo = end) {
      const adds = new Map<string, JournaledAdd>()
      const removals = new Map<string, LedgerEntry | undefined>()
      const through = Math.min(Math.max(upTo, start), end)
      if (lines === 0 || through === start) return { adds, removals, through }
      if (fd < 0) throw closedError()
      let unreadable = 0
      const read = forEachLine(fd, 0, through - start, (line) => {
        try {
          if (line.startsWith('A ')) {
            const { sealed, entry, replace } = JSON.parse(line.slice(2)) as { sealed: string; entry: LedgerEntry; replace: boolean }
            const key = entry.auditSessionId
            const earlier = adds.get(key)
            // As in the table: an adoption never overrides a login.
            if (earlier?.replace && !replace) return
            adds.set(key, { sessionId: seal.unseal(sealed), sealed, entry, replace })
            removals.delete(key)
          } else if (line.startsWith('R ')) {
            const key = JSON.parse(line.slice(2)) as string
            removals.set(key, adds.get(key)?.entry ?? removals.get(key))
            adds.delete(key)
          }
        } catch {
          unreadable++
        }
      }, readBytes)
      // Past the last whole line lies one that a write cut short (a full disk took only part of it).
      unreadable += read.skipped + (read.end < through - start ? 1 : 0)
      if (unreadable > 0) warn(`${unreadable} lines of the session ledger journal ${file} could not be read back (cut short, or sealed under another session key) and were skipped`)
      return { adds, removals, through }
    },
    clear(through) {
      if (fd < 0 || lines === 0 || through <= start) return
      if (through >= end) {
        // The usual case, after each write of the ledger's rows: all of it is in the table.
        ftruncateSync(fd, 0)
        start = end
        lines = 0
        return
      }
      // What was journaled while the rows were being written stays; renamed into place, so that a
      // kill half-way leaves either the old journal or the new one.
      const next = `${file}.next`
      const out = openSync(next, 'w', 0o600)
      let kept: number
      try {
        kept = copyBytes(fd, through - start, end - start, out, readBytes)
      } finally {
        closeSync(out)
      }
      closeSync(fd)
      // Until it is open again: should the reopen fail (EMFILE), appends must fail, not write into
      // whatever file is given the closed descriptor's number next.
      fd = -1
      try {
        renameSync(next, file)
      } finally {
        // Whether or not the rename went through, appends go on into the file by its name.
        fd = openSync(file, 'a+', 0o600)
      }
      start = through
      lines = kept
    },
    size: () => lines,
    close() {
      if (fd < 0) return
      closeSync(fd)
      fd = -1
      if (lines === 0) unlinkSync(file)
    },
  }
}

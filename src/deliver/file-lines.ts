import { readSync, writeSync } from 'node:fs'

/** Bytes read at a time by {@link readWholeLines}. */
export const READ_BYTES = 1 << 20

/**
 * The longest line {@link readWholeLines} keeps, some hundred thousand times a ledger journal line: what
 * is longer is no line anyone wrote (a run of NUL bytes that a power loss left where the file grew,
 * say), and keeping it would take the memory that reading in pieces is there to spare.
 */
const MAX_LINE_BYTES = 64 << 20

/** What {@link readWholeLines} found. */
export interface WholeLines {
  /** Just past the last whole line: what lies between it and the end of the range is a line cut short. */
  readonly end: number
  /** Lines longer than {@link MAX_LINE_BYTES}, left out. */
  readonly skipped: number
}

/**
 * Hands `take` the whole lines of the file `fd` between bytes `from` and `to`, several at a time: a
 * buffer of lines, each with its `\n`, valid only until `take` returns. Read `chunkBytes` at a time,
 * so that a file of any size is read in bounded memory: a string of a whole file stops at V8's longest
 * (about 512 MiB on Node 20), a buffer at 2 GiB. A line is never split, and so neither is a UTF-8
 * character: none holds the byte `\n`.
 */
export function readWholeLines(fd: number, from: number, to: number, take: (lines: Buffer) => void, chunkBytes = READ_BYTES): WholeLines {
  const chunk = Buffer.allocUnsafe(Math.max(1, Math.min(chunkBytes, MAX_LINE_BYTES, to - from)))
  /** The start of a line that earlier reads began; dropped, and the line skipped, once it is too long. */
  let carry: Buffer[] = []
  let carried = 0
  let tooLong = false
  let end = from
  let skipped = 0
  for (let position = from; position < to; ) {
    const read = readSync(fd, chunk, 0, Math.min(chunk.length, to - position), position)
    if (read === 0) break
    const data = chunk.subarray(0, read)
    position += read
    const last = data.lastIndexOf(10)
    if (last < 0) {
      carried += read
      if (carried > MAX_LINE_BYTES) tooLong = true
      if (tooLong) carry = []
      else carry.push(Buffer.from(data))
      continue
    }
    let first = 0
    if (carried > 0) {
      first = data.indexOf(10) + 1
      if (tooLong || carried + first > MAX_LINE_BYTES) skipped++
      else take(Buffer.concat([...carry, data.subarray(0, first)]))
    }
    if (first <= last) take(data.subarray(first, last + 1))
    end = position - read + last + 1
    carried = read - last - 1
    tooLong = false
    carry = carried > 0 ? [Buffer.from(data.subarray(last + 1))] : []
  }
  return { end, skipped }
}

/** Calls `line` with each whole line of `fd` between `from` and `to`, without its `\n` (see {@link readWholeLines}). */
export function forEachLine(fd: number, from: number, to: number, line: (text: string) => void, chunkBytes = READ_BYTES): WholeLines {
  return readWholeLines(fd, from, to, (lines) => {
    for (let start = 0; start < lines.length; ) {
      const newline = lines.indexOf(10, start)
      line(lines.toString('utf8', start, newline))
      start = newline + 1
    }
  }, chunkBytes)
}

/** The lines in `bytes`: its `\n`s. */
export function countLines(bytes: Uint8Array): number {
  let lines = 0
  for (let at = bytes.indexOf(10); at >= 0; at = bytes.indexOf(10, at + 1)) lines++
  return lines
}

/**
 * Appends bytes `from` to `to` of the file `fd` to `out`, `chunkBytes` at a time, as they are:
 * no line left out, so that positions counted in bytes stay true. Returns the lines copied.
 */
export function copyBytes(fd: number, from: number, to: number, out: number, chunkBytes = READ_BYTES): number {
  const chunk = Buffer.allocUnsafe(Math.max(1, Math.min(chunkBytes, to - from)))
  let lines = 0
  for (let position = from; position < to; ) {
    const read = readSync(fd, chunk, 0, Math.min(chunk.length, to - position), position)
    if (read === 0) break
    writeSync(out, chunk, 0, read)
    lines += countLines(chunk.subarray(0, read))
    position += read
  }
  return lines
}

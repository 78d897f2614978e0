/**
 * When this process started, in epoch ms. Files that name their owner by process id also carry this, so
 * that a process can tell its own files from those of an earlier process that had the same id: a
 * container restarted with its volume runs as pid 1 again, and would otherwise take the files its
 * killed predecessor left (spool, ledger journal, the embedded store's lock) for its own.
 */
export function processStamp(): number {
  return Math.floor(performance.timeOrigin)
}

/**
 * Whether a process of this host is alive (spool files and the embedded store's lock name their owner
 * by process id). EPERM means it exists but belongs to someone else: alive. For this process's own id,
 * `stamp` says whether the owner is this process ({@link processStamp}) or an earlier one; a file
 * written before stamps were kept has none, and is an earlier process's.
 */
export function isAlive(pid: number, stamp?: number): boolean {
  if (pid === process.pid) return stamp === processStamp()
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

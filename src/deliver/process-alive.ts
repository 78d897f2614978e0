/**
 * Whether a process of this host is alive (spool files and the embedded store's lock name their owner
 * by process id). EPERM means it exists but belongs to someone else: alive.
 */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

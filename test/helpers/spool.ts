import type { Spool } from '../../src/deliver/spool.js'

/** The ids of the events that `spool` takes over from processes now gone, in order. */
export function recoveredIds(spool: Spool): string[] {
  const ids: string[] = []
  spool.recover((event) => ids.push(event.id))
  return ids
}

import type { AuditEvent } from '../types.js'

/** Where an event keeps its JSON once made: a symbol, so JSON.stringify and spreads leave it out. */
const JSON_TEXT = Symbol('authtrail.eventJson')

/**
 * An event as JSON, made once: the spool writes it before the login response, and the same text later
 * carries the event to the database thread, instead of a second JSON.stringify on the event loop.
 */
export function eventJson(event: AuditEvent): string {
  const carrier = event as AuditEvent & { [JSON_TEXT]?: string }
  if (carrier[JSON_TEXT] !== undefined) return carrier[JSON_TEXT]
  const json = JSON.stringify(event)
  // A frozen event (an app's own, through a custom spool) is serialised again rather than refused.
  if (Object.isExtensible(event)) carrier[JSON_TEXT] = json
  return json
}

/** A batch as one JSON array, from each event's JSON. */
export function batchJson(events: readonly AuditEvent[]): string {
  return `[${events.map(eventJson).join(',')}]`
}

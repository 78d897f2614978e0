import { createHmac } from 'node:crypto'
import { XMLParser } from 'fast-xml-parser'
import type { AuditRow } from './audit-query.js'

type XmlValue = string | XmlObject | XmlValue[]
export interface XmlObject { [element: string]: XmlValue }

/** Every value as text, entities and character references decoded (the CR that authtrail writes as &#13;). */
const parser = new XMLParser({ parseTagValue: false, processEntities: true, htmlEntities: true, trimValues: false, ignoreDeclaration: true })

/** The two documents of a row as objects; a document that does not parse (a foreign procedure's) is empty. */
export function parseRow(row: AuditRow): { data: XmlObject; context: XmlObject } {
  const read = (xml: string, root: string): XmlObject => {
    try {
      const tree = parser.parse(xml) as Record<string, unknown>
      const value = tree[root]
      return value !== null && typeof value === 'object' ? (value as XmlObject) : {}
    } catch {
      return {}
    }
  }
  return { data: read(row.data, 'data'), context: read(row.session_context, 'sessioncontext') }
}

/** A text child, or '' when absent or not text. */
export function textOf(tree: XmlObject | undefined, name: string): string {
  const value = tree?.[name]
  return typeof value === 'string' ? value : ''
}

/** `undefined` for what the parser could not tell (Showcase's UNDEFINED) or nothing at all. */
export function known(value: string): string | undefined {
  return value === '' || value === 'UNDEFINED' ? undefined : value
}

/**
 * Replaces a username by its pseudonym, the way FUN published its tracking logs:
 * `HMAC-SHA256(secret, username)` in hex, the same in every export made with the same key.
 */
export interface Pseudonymizer {
  (username: string): string
}

export function createPseudonymizer(key: Buffer): Pseudonymizer {
  const cache = new Map<string, string>()
  return (username) => {
    if (username === '') return ''
    let pseudonym = cache.get(username)
    if (pseudonym === undefined) {
      pseudonym = createHmac('sha256', key).update(username, 'utf8').digest('hex')
      if (cache.size > 100_000) cache.clear()
      cache.set(username, pseudonym)
    }
    return pseudonym
  }
}

/** Turns a text into the same text with the row's usernames replaced by their pseudonyms. */
export type UserScrub = (text: string) => string

const unchanged: UserScrub = (text) => text

/**
 * The scrub for one row: a value equal to one of `usernames` becomes its pseudonym, and so does every
 * occurrence inside a longer value of a username of 4 or more characters (a shorter one would hit
 * ordinary words, like the password scrub of src/capture/request-facts.ts). Apply it only to what can
 * hold a user's name: a name like "auth" or "2026" must not rewrite `authentication` or a timestamp.
 */
export function userScrub(usernames: readonly string[], pseudonymize: Pseudonymizer | undefined): UserScrub {
  const names = new Set(usernames.filter((name) => name !== ''))
  if (!pseudonymize || names.size === 0) return unchanged
  const long = [...names].filter((name) => name.length >= 4).sort((a, b) => b.length - a.length)
  // One pass, longest name first, so that a pseudonym just written is never matched again.
  const inside = long.length > 0 ? new RegExp(long.map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : undefined
  return (text) => {
    if (names.has(text)) return pseudonymize(text)
    return inside ? text.replace(inside, (name) => pseudonymize(name)) : text
  }
}

/**
 * Elements of authtrail's documents that hold what authtrail itself measured or decided (addresses,
 * parsed browser, session id, times, counts, the login method), never a name a user chose.
 */
const DOCUMENT_FACTS: ReadonlySet<string> = new Set([
  'HttpSessionId', 'Browser', 'BrowserVersion', 'IP', 'Host', 'OS', 'OSVersion', 'PriorFailures', 'password', 'domain', 'name',
  'GapEvents', 'GapFrom', 'GapTo', 'Scope', 'Attempts', 'WindowSeconds', 'BlockedUntil', 'Enforced', 'Action', 'Rows', 'Channel',
])

/**
 * Elements that may name any user, not only the row's, whose names a scrub cannot know: an
 * AUDIT_ACCESS's filter (`user=bob`). A scrubbed document leaves them out.
 */
const ANY_USER: ReadonlySet<string> = new Set(['Filter'])

/**
 * A document with `scrub` applied to every text but those of DOCUMENT_FACTS, and without those of
 * ANY_USER; an element of another procedure's is scrubbed.
 */
export function scrubDocument(tree: XmlObject, scrub: UserScrub): XmlObject {
  if (scrub === unchanged) return tree
  const walk = (v: XmlValue): XmlValue => {
    if (typeof v === 'string') return scrub(v)
    if (Array.isArray(v)) return v.map(walk)
    return Object.fromEntries(Object.entries(v).filter(([k]) => !ANY_USER.has(k)).map(([k, item]) => [k, DOCUMENT_FACTS.has(k) ? item : walk(item)]))
  }
  return walk(tree) as XmlObject
}

/** Every name the row holds for its user: the column, and the names in both documents. */
export function usernamesOf(row: AuditRow, data: XmlObject, context: XmlObject): string[] {
  const errorData = data.errorData as XmlObject | undefined
  return [...new Set([row.username, textOf(data, 'UserName'), textOf(errorData, 'username'), textOf(context, 'username'), textOf(context, 'login')])]
}

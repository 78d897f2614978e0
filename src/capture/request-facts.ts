import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { AuditEvent, AuditEventType, UserProfile } from '../types.js'
import { toXmlChars, truncate, truncateUtf8 } from '../describe/xml-text.js'

/** The parts of an Express request that authtrail reads. */
export interface RequestLike {
  readonly ip?: string | undefined
  readonly headers: IncomingHttpHeaders
  readonly query?: unknown
  readonly sessionID?: string
  readonly socket?: { readonly remoteAddress?: string | undefined }
}

/** Parameter names whose values never reach the audit trail (Showcase logged the password in urlparams). */
const SENSITIVE_PARAM = /pass|pwd|secret|token|key|auth|cred|otp|^code$|session|sid|cookie|signature/i

/** Longest parameter name and value kept in `<urlparams>`, and how many parameters. */
const MAX_PARAM_LENGTH = 256
const MAX_PARAMS = 32

/** What the capture side knows about the user when an event happens. */
export interface UserFacts {
  readonly username: string
  readonly userId: string
  readonly profile: UserProfile
}

export const NO_USER: UserFacts = Object.freeze({ username: '', userId: '', profile: Object.freeze({}) })

/** Extra facts of a LOGINERROR (or, with only the password, of a LOGIN, so that it is scrubbed there too). */
export interface FailureFacts {
  readonly method: string
  readonly message: string
  /** The submitted password, used only to scrub it from every other value; never stored. */
  readonly password?: string | undefined
}

/**
 * Limits applied to values taken from the request. `userAgentMaxLength` comes from the properties
 * file; other header-derived values are cut to `fieldMaxLength`.
 */
export interface FactLimits {
  readonly userAgentMaxLength: number
  readonly fieldMaxLength: number
}

function firstHeader(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value[0] ?? '' : value ?? ''
}

/** The User-Agent header cut to the configured limit; empty when absent (Showcase threw on a missing one). */
export function userAgentOf(req: RequestLike, limits: FactLimits): string {
  return truncate(firstHeader(req.headers['user-agent']), limits.userAgentMaxLength)
}

/** The client's address as Express gives it (req.ip honours `trust proxy`; nothing else is read). */
function addressOf(req: RequestLike): string {
  return req.ip ?? req.socket?.remoteAddress ?? ''
}

function urlParams(query: unknown, password: string | undefined): Array<readonly [string, string]> {
  const params: Array<readonly [string, string]> = []
  if (query === null || typeof query !== 'object') return params
  for (const [name, raw] of Object.entries(query as Record<string, unknown>)) {
    if (params.length >= MAX_PARAMS) break
    if (SENSITIVE_PARAM.test(name)) continue
    const values = Array.isArray(raw) ? raw : [raw]
    // A parameter whose name or value holds the password is left out whole, not half-redacted; looked
    // for before the cut, which could keep the password's first characters.
    const whole = toXmlChars(name)
    if (scrub(whole, password) !== whole) continue
    const kept = truncate(whole, MAX_PARAM_LENGTH)
    for (const value of values) {
      // Counted by value: ?next=…&next=… repeated a thousand times is one name.
      if (params.length >= MAX_PARAMS) break
      if (typeof value !== 'string') continue
      const text = toXmlChars(value)
      if (scrub(text, password) !== text) continue
      params.push([kept, truncate(text, MAX_PARAM_LENGTH)])
    }
  }
  return params
}

/**
 * Shorter passwords are only redacted where a value equals them: cutting "x" out of every value that
 * contains the letter would destroy the record and protect nothing.
 */
export const MIN_SCRUBBED_SUBSTRING = 4
export const REDACTED = '[redacted]'

/**
 * Removes the submitted password from a value that is about to be stored: a value equal to it (users
 * type passwords into the name field), and any occurrence of a password of 4 or more characters. The
 * result never contains the password: a password found inside "[redacted]" is redacted as "***", and a
 * replacement that would join with its neighbours into the password again redacts the whole value.
 */
export function scrub(text: string, password: string | undefined): string {
  if (!password) return text
  const marker = REDACTED.includes(password) ? '***' : REDACTED
  if (text === password) return marker
  if (password.length < MIN_SCRUBBED_SUBSTRING || !text.includes(password)) return text
  const replaced = text.replaceAll(password, marker)
  return replaced.includes(password) ? marker : replaced
}

/**
 * `<data>` stores the User-Agent lowercased, so a password that only its lowercase form contains
 * ("HUNTER22" typed in a header, "hunter22" the password) is scrubbed in that form.
 */
function scrubUserAgent(userAgent: string, password: string | undefined): string {
  const scrubbed = scrub(userAgent, password)
  if (!password) return scrubbed
  const lowered = scrubbed.toLowerCase()
  const again = scrub(lowered, password)
  return again === lowered ? scrubbed : again
}

/**
 * The User-Agent as an event stores it: XML-safe, scrubbed of the password, cut to the limit. Scrubbed
 * before it is cut, like the other values, since a cut could keep a password's first characters.
 */
export function storedUserAgent(req: RequestLike, limits: FactLimits, password: string | undefined): string {
  if (password === undefined) return toXmlChars(userAgentOf(req, limits))
  return truncate(scrubUserAgent(toXmlChars(firstHeader(req.headers['user-agent'])), password), limits.userAgentMaxLength)
}

/**
 * Most UTF-8 bytes a request-derived value keeps: the username and ip columns are indexed with the time,
 * and a PostgreSQL btree entry holds at most 2704 bytes. 1024 characters of CJK text are 3072 bytes; a
 * name that long would make the event's row unstorable, a failed login kept out of the trail by its size.
 */
export const FACT_MAX_BYTES = 2048

/**
 * How a request-derived value is stored: made XML-safe, scrubbed of the password, then cut to the
 * limits. Values are made XML-safe before the password is looked for (what is stored is what is
 * checked), and cut after it: a cut first could leave the start of a password at the end of the value,
 * and a "[redacted]" longer than what it replaced could take the value past the limit.
 */
function storedFact(limits: FactLimits, password: string | undefined): (text: string) => string {
  return (text) => truncateUtf8(truncate(scrub(toXmlChars(text), password), limits.fieldMaxLength), FACT_MAX_BYTES)
}

/** The username and address that an event of this request would store, without capturing the whole event. */
export function storedIdentity(req: RequestLike, username: string, limits: FactLimits, password: string | undefined): { readonly username: string; readonly ip: string } {
  const fact = storedFact(limits, password)
  return { username: fact(username), ip: fact(addressOf(req)) }
}

/**
 * What failed logins are counted and looked up by (brute-force detection, on every attempt): the
 * address as stored, and the name as typed, not scrubbed of the password. Scrubbed, a guess equal to
 * the name ("bob2024" for bob2024) would be counted and looked up as "[redacted]", never locked out,
 * and one inside it ("smith" for alice.smith) as another name. Store keys are hashes, never the name.
 */
export function attemptIdentity(req: RequestLike, username: string, limits: FactLimits, password: string | undefined): { readonly username: string; readonly ip: string } {
  return { username: storedFact(limits, undefined)(username), ip: storedFact(limits, password)(addressOf(req)) }
}

/**
 * Records the facts of one event from a request: one fixed-shape object, no parsing. `sessionId` must
 * already be hashed by the caller.
 */
export function captureEvent(
  type: AuditEventType,
  req: RequestLike,
  sessionId: string,
  user: UserFacts,
  limits: FactLimits,
  failure?: FailureFacts,
): AuditEvent {
  const password = failure?.password
  const fact = storedFact(limits, password)
  // X-Forwarded-For under trust proxy is whatever the client sent.
  const ip = fact(addressOf(req))
  return {
    id: randomUUID(),
    type,
    time: Date.now(),
    sessionId,
    username: fact(user.username),
    userId: fact(user.userId),
    ip,
    host: ip,
    userAgent: storedUserAgent(req, limits, password),
    method: failure?.method ?? '',
    message: fact(failure?.message ?? ''),
    urlParams: urlParams(req.query, password),
    profile: user.profile,
  }
}

/**
 * An event with no request behind it, such as a timeout noticed by the sweep; `time` is when it
 * happened (the session's expiry), not when it was noticed.
 */
export function detachedEvent(type: AuditEventType, time: number, sessionId: string, user: UserFacts, ip: string, userAgent: string): AuditEvent {
  return {
    id: randomUUID(),
    type,
    time,
    sessionId,
    username: user.username,
    userId: user.userId,
    ip,
    host: ip,
    userAgent,
    method: '',
    message: '',
    urlParams: [],
    profile: user.profile,
  }
}

import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { AuditEvent, AuditEventType, UserProfile } from '../types.js'
import { truncate } from '../describe/xml-text.js'

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

/** Extra facts of a LOGINERROR. */
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

function urlParams(query: unknown, password: string | undefined): Array<readonly [string, string]> {
  const params: Array<readonly [string, string]> = []
  if (query === null || typeof query !== 'object') return params
  for (const [name, raw] of Object.entries(query as Record<string, unknown>)) {
    if (params.length >= MAX_PARAMS) break
    if (SENSITIVE_PARAM.test(name)) continue
    const values = Array.isArray(raw) ? raw : [raw]
    for (const value of values) {
      if (typeof value !== 'string' || scrub(value, password) !== value) continue
      params.push([truncate(name, MAX_PARAM_LENGTH), truncate(value, MAX_PARAM_LENGTH)])
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
 * type passwords into the name field), and any occurrence of a password of 4 or more characters.
 */
export function scrub(text: string, password: string | undefined): string {
  if (!password) return text
  if (text === password) return REDACTED
  return password.length >= MIN_SCRUBBED_SUBSTRING && text.includes(password) ? text.replaceAll(password, REDACTED) : text
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
  const ip = truncate(req.ip ?? req.socket?.remoteAddress ?? '', limits.fieldMaxLength)
  return {
    id: randomUUID(),
    type,
    time: Date.now(),
    sessionId,
    username: scrub(truncate(user.username, limits.fieldMaxLength), password),
    userId: scrub(truncate(user.userId, limits.fieldMaxLength), password),
    ip,
    host: ip,
    userAgent: scrub(userAgentOf(req, limits), password),
    method: failure?.method ?? '',
    message: scrub(truncate(failure?.message ?? '', limits.fieldMaxLength), password),
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

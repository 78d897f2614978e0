/**
 * The one filter parser of the CLI (`--user alice`) and the admin page (`?user=alice`): the same names,
 * the same forms, the same messages, so that what an administrator types in one works in the other.
 */
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'
import { AUDIT_EVENT_TYPES } from '../types.js'
import type { AuditEventType } from '../types.js'

/** A bad filter value: the message names the parameter (as the caller spells it) and the value. */
export class FilterError extends Error {
  override name = 'FilterError'
}

/** What an event says about a login attempt. */
export const OUTCOMES = ['success', 'failure'] as const
/** One of {@link OUTCOMES}. */
export type Outcome = (typeof OUTCOMES)[number]

/**
 * `success` is a LOGIN; `failure` is a refused login: LOGINERROR, and LOCKOUT where this version has it.
 * Logouts, timeouts and authtrail's own records have no outcome.
 */
export const OUTCOME_TYPES: Readonly<Record<Outcome, readonly AuditEventType[]>> = {
  success: ['LOGIN'],
  failure: AUDIT_EVENT_TYPES.filter((type) => (['LOGINERROR', 'LOCKOUT'] as readonly string[]).includes(type)),
}

/** A position in the newest-first order: the time (to the microsecond) and id of a row. */
export interface AuditCursor {
  /** ISO 8601 UTC with up to 6 fractional digits. */
  readonly time: string
  /** The row's id, in decimal (a bigint). */
  readonly id: string
}

/** An IPv4 or IPv6 network in CIDR form, normalised to its network address (`10.0.0.0/8`). */
export interface AuditNetwork {
  readonly cidr: string
  readonly family: 4 | 6
  /** First and last address of the network as bytes (4 or 16), for databases without a network type. */
  readonly first: Buffer
  readonly last: Buffer
}

/** Filters shared by the CLI and the admin page. All are optional; rows come newest first. */
export interface AuditFilter {
  readonly types?: readonly AuditEventType[]
  readonly user?: string
  /** Exact client address, as stored. */
  readonly ip?: string
  /** Client addresses within this network; an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) counts as IPv4. */
  readonly network?: AuditNetwork
  readonly outcome?: Outcome
  /** ISO 8601 instant; rows at or after it. */
  readonly since?: string
  /** ISO 8601 instant; rows before it. */
  readonly until?: string
  /** Rows strictly older than this position (keyset pagination). */
  readonly before?: AuditCursor
  /** Rows strictly newer than this position; the page is still returned newest first. */
  readonly after?: AuditCursor
  /** @defaultValue 100 */
  readonly limit?: number
}

/** The most rows one query or page may ask for. */
export const MAX_LIMIT = 10_000

/** Raw parameter values: a query string's or parsed command-line flags. */
export type FilterParams = Readonly<Record<string, string | readonly string[] | undefined>>

/** How {@link parseAuditFilter} names parameters and bounds the page size. */
export interface FilterParseOptions {
  /** How the caller spells a parameter in messages: `--user` for the CLI, `user` for the page. */
  readonly label: (name: string) => string
  /** @defaultValue 100 */
  readonly defaultLimit?: number
  /** @defaultValue {@link MAX_LIMIT} */
  readonly maxLimit?: number
  /** Reference for ages such as `15m`. @defaultValue Date.now() */
  readonly now?: number
}

/** The names {@link parseAuditFilter} reads. */
export const FILTER_PARAMS = ['type', 'user', 'ip', 'outcome', 'since', 'until', 'before', 'after', 'limit'] as const

const MAX_TEXT = 1024

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const
/** The furthest back an age may reach: beyond it, times leave the range a Date can hold. */
const MAX_AGE_DAYS = 100_000
const AGE = /^(\d{1,9})(s|m|h|d)$/
/** A date, or a date and time with its zone: `2026-11-23`, `2026-11-23T10:00Z`, `2026-11-23 10:00:00.5+01:00`. */
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i

/** The milliseconds of an age such as `15m`, undefined when `value` is not one. */
function ageMs(flag: string, value: string): number | undefined {
  const age = AGE.exec(value)
  if (!age) return undefined
  const ms = Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]
  if (ms > MAX_AGE_DAYS * UNIT_MS.d) throw new FilterError(`${flag} ${JSON.stringify(value)}: an age reaches back at most ${MAX_AGE_DAYS}d`)
  return ms
}

/**
 * Parses `since`/`until`-style values: an ISO 8601 instant, or an age relative to `now`. A date alone
 * is midnight UTC; a time must say its zone (`Z` or an offset), since read in the server's zone it would
 * silently shift the range by hours. Dates that do not exist (`2026-02-30`) are refused, not rolled over.
 */
export function parseTime(flag: string, value: string, now: number = Date.now()): string {
  const age = ageMs(flag, value)
  if (age !== undefined) return new Date(now - age).toISOString()
  const expected = 'expected an ISO 8601 time (2026-11-23T10:00:00Z) or an age like 15m, 2h, 7d'
  const instant = INSTANT.exec(value)
  if (!instant) throw new FilterError(`${flag} ${JSON.stringify(value)}: ${expected}`)
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '', zone] = instant
  const midnight = Date.UTC(Number(year), Number(month) - 1, Number(day))
  if (new Date(midnight).toISOString().slice(0, 10) !== `${year}-${month}-${day}`) throw new FilterError(`${flag} ${JSON.stringify(value)}: there is no such date; ${expected}`)
  if (instant[4] !== undefined && zone === undefined) throw new FilterError(`${flag} ${JSON.stringify(value)}: add the time's zone, Z for UTC or an offset like +01:00 (the audit trail's times are UTC)`)
  const offset = zone === undefined || zone.toUpperCase() === 'Z' ? 'Z' : `${zone.slice(0, 3)}:${zone.slice(-2)}`
  const time = Date.parse(`${year}-${month}-${day}T${hour}:${minute}:${second}.${fraction.padEnd(3, '0').slice(0, 3)}${offset}`)
  if (Number.isNaN(time)) throw new FilterError(`${flag} ${JSON.stringify(value)}: ${expected}`)
  return new Date(time).toISOString()
}

/** Parses an age such as `15m` into milliseconds (for windows and retention). */
export function parseDuration(flag: string, value: string): number {
  const ms = ageMs(flag, value)
  if (ms === undefined || ms === 0) throw new FilterError(`${flag} ${JSON.stringify(value)}: expected a positive age like 90s, 15m, 2h, 7d`)
  return ms
}

/** Parses repeated or comma-separated event types, case-insensitively. */
export function parseTypes(values: readonly string[], flag = '--type'): AuditEventType[] {
  const types = values.flatMap((value) => value.split(',')).map((type) => type.trim().toUpperCase()).filter(Boolean)
  for (const type of types) {
    if (!(AUDIT_EVENT_TYPES as readonly string[]).includes(type)) throw new FilterError(`${flag} ${JSON.stringify(type)}: expected one of ${AUDIT_EVENT_TYPES.join(', ')}`)
  }
  return [...new Set(types)] as AuditEventType[]
}

/** Parses a CIDR network; its host bits are dropped (`10.1.2.3/8` is `10.0.0.0/8`). */
export function parseNetwork(flag: string, value: string): AuditNetwork {
  const slash = value.indexOf('/')
  const address = value.slice(0, slash)
  const prefix = value.slice(slash + 1)
  // net.isIP is strict; ipaddr.js alone would also take "10.1" or "0x0a.0.0.1" as IPv4.
  const family = isIP(address)
  const bits = family === 4 ? 32 : 128
  if (family === 0 || !/^\d{1,3}$/.test(prefix) || Number(prefix) > bits) {
    throw new FilterError(`${flag} ${JSON.stringify(value)}: expected an IP address or a network in CIDR form (192.0.2.0/24, 2001:db8::/32)`)
  }
  const bytes = ipaddr.parse(address).toByteArray()
  const first = Buffer.from(bytes)
  const last = Buffer.from(bytes)
  for (let bit = Number(prefix); bit < bits; bit++) {
    const mask = 0x80 >> (bit % 8)
    first[bit >> 3]! &= ~mask
    last[bit >> 3]! |= mask
  }
  return { cidr: `${ipaddr.fromByteArray([...first]).toString()}/${prefix}`, family: family as 4 | 6, first, last }
}

/** The opaque form of a cursor in URLs and on the command line. */
export function encodeCursor(cursor: AuditCursor): string {
  return Buffer.from(JSON.stringify([cursor.time, cursor.id])).toString('base64url')
}

/** Reads a cursor that {@link encodeCursor} made; anything else is refused. */
export function decodeCursor(flag: string, value: string): AuditCursor {
  let parsed: unknown
  try {
    parsed = /^[A-Za-z0-9_-]{1,200}$/.test(value) ? JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) : undefined
  } catch {
    parsed = undefined
  }
  if (
    Array.isArray(parsed) && parsed.length === 2 &&
    typeof parsed[0] === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/.test(parsed[0]) && !Number.isNaN(Date.parse(parsed[0])) &&
    typeof parsed[1] === 'string' && /^\d{1,19}$/.test(parsed[1])
  ) {
    return { time: parsed[0], id: parsed[1] }
  }
  throw new FilterError(`${flag} ${JSON.stringify(value.slice(0, 80))}: not a page position authtrail produced; start again from the newest events`)
}

function single(params: FilterParams, name: string): string | undefined {
  const value = params[name]
  const text = typeof value === 'string' ? value : value?.[value.length - 1]
  return text === undefined || text.trim() === '' ? undefined : text
}

function boundedText(label: string, value: string): string {
  if (value.length > MAX_TEXT) throw new FilterError(`${label} ${JSON.stringify(`${value.slice(0, 40)}…`)}: longer than ${MAX_TEXT} characters`)
  return value
}

/**
 * Turns raw parameters into a filter, or throws a {@link FilterError} naming the parameter and value.
 * `type` may repeat or be comma-separated; `ip` with a `/` is a network; `since`/`until` are ISO 8601
 * or ages; `before`/`after` are cursors of an earlier page.
 */
export function parseAuditFilter(params: FilterParams, options: FilterParseOptions): AuditFilter {
  const { label } = options
  const raw = params.type
  const types = parseTypes(raw === undefined ? [] : typeof raw === 'string' ? [raw] : raw, label('type'))
  const user = single(params, 'user')
  const ip = single(params, 'ip')?.trim()
  const outcome = single(params, 'outcome')
  if (outcome !== undefined && !(OUTCOMES as readonly string[]).includes(outcome)) {
    throw new FilterError(`${label('outcome')} ${JSON.stringify(outcome)}: expected ${OUTCOMES.join(' or ')} (success: ${OUTCOME_TYPES.success.join(', ')}; failure: ${OUTCOME_TYPES.failure.join(', ')})`)
  }
  if (outcome !== undefined && types.length > 0 && !types.some((type) => OUTCOME_TYPES[outcome as Outcome].includes(type))) {
    throw new FilterError(`${label('outcome')} ${JSON.stringify(outcome)} and ${label('type')} ${JSON.stringify(types.join(','))} exclude each other: ${outcome} means ${OUTCOME_TYPES[outcome as Outcome].join(', ')}`)
  }
  const since = single(params, 'since')
  const until = single(params, 'until')
  const before = single(params, 'before')
  const after = single(params, 'after')
  if (before !== undefined && after !== undefined) throw new FilterError(`${label('before')} and ${label('after')} exclude each other: give one page position`)
  const maxLimit = options.maxLimit ?? MAX_LIMIT
  const limit = single(params, 'limit') ?? String(options.defaultLimit ?? 100)
  if (!/^\d{1,6}$/.test(limit) || Number(limit) < 1 || Number(limit) > maxLimit) {
    throw new FilterError(`${label('limit')} ${JSON.stringify(limit)}: expected a whole number from 1 to ${maxLimit}`)
  }
  const now = options.now ?? Date.now()
  return {
    ...(types.length > 0 ? { types } : {}),
    ...(user !== undefined ? { user: boundedText(label('user'), user) } : {}),
    ...(ip === undefined ? {} : ip.includes('/') ? { network: parseNetwork(label('ip'), ip) } : { ip: boundedText(label('ip'), ip) }),
    ...(outcome !== undefined ? { outcome: outcome as Outcome } : {}),
    ...(since !== undefined ? { since: parseTime(label('since'), since, now) } : {}),
    ...(until !== undefined ? { until: parseTime(label('until'), until, now) } : {}),
    ...(before !== undefined ? { before: decodeCursor(label('before'), before) } : {}),
    ...(after !== undefined ? { after: decodeCursor(label('after'), after) } : {}),
    limit: Number(limit),
  }
}

/**
 * The filter as one line of text for the audit trail's own AUDIT_ACCESS records: who looked at what.
 * Cursors are kept (a deep page is a different read from the first one).
 */
export function describeFilter(filter: AuditFilter, extra: Readonly<Record<string, string | number>> = {}): string {
  const { network, before, after, ...rest } = filter
  return JSON.stringify({
    ...extra,
    ...rest,
    ...(network ? { network: network.cidr } : {}),
    ...(before ? { before } : {}),
    ...(after ? { after } : {}),
  })
}

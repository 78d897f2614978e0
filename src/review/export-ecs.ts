import { isIP } from 'node:net'
import type { AuditEventType } from '../types.js'
import type { AuditRow } from './audit-query.js'
import type { Pseudonymizer, UserScrub, XmlObject } from './export-fields.js'
import { known, parseRow, textOf, userScrub, usernamesOf } from './export-fields.js'

/** The Elastic Common Schema version the records follow. */
export const ECS_VERSION = '8.11.0'

/** How each event type reads in ECS (https://www.elastic.co/guide/en/ecs/current/ecs-allowed-values-event-category.html). */
const MAPPING: Readonly<Record<AuditEventType, { kind: string; category: string[]; type: string[]; action: string; outcome: 'success' | 'failure' | 'unknown' }>> = {
  LOGIN: { kind: 'event', category: ['authentication'], type: ['start'], action: 'login', outcome: 'success' },
  LOGINERROR: { kind: 'event', category: ['authentication'], type: ['start'], action: 'login-failure', outcome: 'failure' },
  LOGOUT: { kind: 'event', category: ['session'], type: ['end'], action: 'logout', outcome: 'success' },
  // An end that was asked for and did not happen: the session goes on.
  LOGOUTERROR: { kind: 'event', category: ['session'], type: ['end'], action: 'logout-failure', outcome: 'failure' },
  SESSIONTIMEOUT: { kind: 'event', category: ['session'], type: ['end'], action: 'session-timeout', outcome: 'success' },
  SESSIONEND: { kind: 'event', category: ['session'], type: ['end'], action: 'session-end', outcome: 'success' },
  LOCKOUT: { kind: 'alert', category: ['authentication'], type: ['info'], action: 'lockout', outcome: 'unknown' },
  AUDIT_GAP: { kind: 'event', category: ['process'], type: ['info'], action: 'audit-gap', outcome: 'failure' },
  // An administrator reading the audit trail itself; which way (view, export, purge...) is in authtrail.access.
  AUDIT_ACCESS: { kind: 'event', category: ['database'], type: ['access'], action: 'audit-access', outcome: 'success' },
}
const OTHER = { kind: 'event', category: ['authentication'], type: ['info'], action: 'unknown', outcome: 'unknown' as const }

const compact = <T extends Record<string, unknown>>(object: T): T => Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined)) as T

function userAgent(data: XmlObject, scrub: UserScrub): Record<string, unknown> | undefined {
  const original = known(textOf(data, 'UserAgent'))
  if (!original) return undefined
  const os = compact({ name: known(textOf(data, 'OS')), version: known(textOf(data, 'OSVersion')) })
  return compact({ original: scrub(original), name: known(textOf(data, 'Browser')), version: known(textOf(data, 'BrowserVersion')), os: Object.keys(os).length > 0 ? os : undefined })
}

/**
 * One audit row as an ECS document, for Filebeat or Logstash (one JSON object per line). authtrail's own
 * fields are under `authtrail`. `source.ip` is set only for a valid address; `source.address` always
 * keeps what was recorded. With `pseudonymize`, every username becomes its pseudonym in the fields that
 * can hold one (user, related.user, event.reason, user_agent.original; never the mapping's constants or
 * the time), and the profile fields (email, user id) are left out.
 */
export function toEcs(row: AuditRow, pseudonymize?: Pseudonymizer): Record<string, unknown> {
  const { data, context } = parseRow(row)
  // A type from elsewhere (a procedure shared with another app) has no mapping.
  const mapping = MAPPING[row.type as AuditEventType] ?? OTHER
  const ip = row.ip
  const validIp = isIP(ip) !== 0
  const errorData = data.errorData as XmlObject | undefined
  const reason = known(textOf(data, 'SecurityLastExeption') || textOf(data, 'Reason'))
  const scrub = userScrub(usernamesOf(row, data, context), pseudonymize)
  const username = scrub(row.username)
  const agent = userAgent(data, scrub)
  return {
    '@timestamp': row.time,
    ecs: { version: ECS_VERSION },
    event: compact({ kind: mapping.kind, category: mapping.category, type: mapping.type, action: mapping.action, outcome: mapping.outcome, id: known(textOf(context, 'eventid')), dataset: 'authtrail.audit', reason: reason === undefined ? undefined : scrub(reason) }),
    ...(row.username !== '' ? { user: compact({ name: username, id: pseudonymize ? undefined : known(textOf(context, 'sid')), email: pseudonymize ? undefined : known(textOf(context, 'email')) }) } : {}),
    ...(ip !== '' ? { source: compact({ address: ip, ip: validIp ? ip : undefined }) } : {}),
    ...(agent ? { user_agent: agent } : {}),
    related: compact({ user: row.username !== '' ? [username] : undefined, ip: validIp ? [ip] : undefined }),
    authtrail: compact({
      id: row.id,
      type: row.type,
      session_id: known(row.session_id),
      host: known(textOf(data, 'Host')),
      login_method: known(textOf(errorData, 'name')),
      prior_failures: textOf(data, 'PriorFailures') !== '' ? Number(textOf(data, 'PriorFailures')) : undefined,
      lockout: row.type === 'LOCKOUT'
        ? { scope: textOf(data, 'Scope'), attempts: Number(textOf(data, 'Attempts')), window_seconds: Number(textOf(data, 'WindowSeconds')), until: textOf(data, 'BlockedUntil'), enforced: textOf(data, 'Enforced') === 'true' }
        : undefined,
      // The filter may name any user, not only the row's: pseudonymised exports leave it out.
      access: row.type === 'AUDIT_ACCESS' ? { action: textOf(data, 'Action'), filter: pseudonymize ? undefined : textOf(data, 'Filter'), rows: Number(textOf(data, 'Rows')), channel: textOf(data, 'Channel') } : undefined,
      gap: row.type === 'AUDIT_GAP' ? { events: Number(textOf(data, 'GapEvents')), from: textOf(data, 'GapFrom'), to: textOf(data, 'GapTo') } : undefined,
    }),
  }
}

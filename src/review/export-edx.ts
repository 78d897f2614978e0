import type { AuditRow } from './audit-query.js'
import type { Pseudonymizer } from './export-fields.js'
import { parseRow, scrubDocument, textOf, userScrub, usernamesOf } from './export-fields.js'

/**
 * One audit row in the shape of an Open edX tracking-log event (eventtracking's server_track: username,
 * ip, referer, accept_language, event_source, event_type, event, agent, page, time, host, context), so
 * that tooling written for edX and FUN logs reads it. `event` is the row's `<data>` document as an
 * object; `event_type` is `authtrail.` and the type in lower case (`authtrail.login`). authtrail records
 * neither the Referer, the Accept-Language nor the server's own host name: those are empty, and `page`
 * is null, as for edX server events. With `pseudonymize`, usernames become their pseudonyms in
 * `username`, `agent` and the texts of `event` that can hold one (never `event_type`, the time or what
 * authtrail measured), and the app's user id is left out, as FUN did for its public logs.
 */
export function toEdx(row: AuditRow, pseudonymize?: Pseudonymizer): Record<string, unknown> {
  const { data, context } = parseRow(row)
  const scrub = userScrub(usernamesOf(row, data, context), pseudonymize)
  return {
    username: scrub(row.username),
    ip: row.ip,
    referer: '',
    accept_language: '',
    event_source: 'server',
    event_type: `authtrail.${row.type.toLowerCase()}`,
    event: scrubDocument(data, scrub),
    agent: scrub(textOf(data, 'UserAgent')),
    page: null,
    time: row.time,
    host: '',
    context: {
      user_id: pseudonymize ? '' : textOf(context, 'sid'),
      org_id: '',
      course_id: '',
      path: '',
      session: row.session_id,
      event_id: textOf(context, 'eventid'),
      authtrail_id: row.id,
    },
  }
}

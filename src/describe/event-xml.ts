import { XMLBuilder } from 'fast-xml-parser'
import type { AuditEvent, DescribedEvent, UserProfile } from '../types.js'
import type { ClientInfo } from './client-info.js'
import { createClientInfoParser } from './client-info.js'
import { toXmlChars } from './xml-text.js'

type XmlTree = { [element: string]: string | XmlTree | XmlTree[] }

/**
 * Escaping stays on (fast-xml-parser's `processEntities`): every value is text, never markup, so a
 * User-Agent like `</UserAgent><IP>1.2.3.4</IP>` stays inside its element.
 */
const builder = new XMLBuilder({ processEntities: true, format: false, suppressEmptyNode: false })

/**
 * Escapes what the builder leaves raw. A literal CR would be normalised to LF by every XML parser,
 * so it is written as a character reference to keep the text intact.
 */
function build(tree: XmlTree): string {
  const xml = builder.build(tree) as string
  return xml.includes('\r') ? xml.replaceAll('\r', '&#13;') : xml
}

/** Applies {@link toXmlChars} to every string of a tree. */
function clean(tree: XmlTree): XmlTree {
  const out: XmlTree = {}
  for (const [key, value] of Object.entries(tree)) {
    out[key] = typeof value === 'string' ? toXmlChars(value) : Array.isArray(value) ? value.map(clean) : clean(value)
  }
  return out
}

function lower(text: string): string {
  return text.toLowerCase()
}

/**
 * LOGINERROR's elements in Showcase's order. LOGOUTERROR has them too, so that a procedure reads both
 * failures by the same paths, and `signedIn` adds the name of the user, who is still signed in.
 */
function failureData(event: AuditEvent, client: ClientInfo, signedIn: boolean): XmlTree {
  return {
    // "Exeption" (sic) is Showcase's spelling; procedures written for Showcase look for it.
    SecurityLastExeption: event.message,
    ...(signedIn ? { UserName: event.username } : {}),
    OS: client.os,
    IP: event.ip,
    UserAgent: lower(event.userAgent),
    OSVersion: client.osVersion,
    Host: event.host,
    BrowserVersion: client.browserVersion,
    errorData: {
      // Kept for Showcase compatibility, always empty: Showcase logged the password here in clear.
      password: '',
      Message: event.message,
      domain: '',
      name: event.method,
      username: event.username,
    },
    HttpSessionId: event.sessionId,
    Browser: client.browser,
  }
}

/**
 * The `<data>` document of Showcase for one event. Element order follows the seed document
 * (shared/seeds/004): Showcase's own order was Java HashMap order, so any fixed order is compatible.
 */
export function buildDataXml(event: AuditEvent, client: ClientInfo): string {
  switch (event.type) {
    case 'LOGIN':
      return build({ data: clean({
        HttpSessionId: event.sessionId,
        UserName: event.username,
        Browser: client.browser,
        BrowserVersion: client.browserVersion,
        IP: event.ip,
        Host: event.host,
        OS: client.os,
        OSVersion: client.osVersion,
        UserAgent: lower(event.userAgent),
        // authtrail's addition, only after failures: a success that ends a run of failed attempts.
        ...(event.priorFailures ? { PriorFailures: String(event.priorFailures) } : {}),
      }) })
    case 'LOGINERROR':
      return build({ data: clean(failureData(event, client, false)) })
    case 'LOGOUT':
      return build({ data: clean({ HttpSessionId: event.sessionId }) })
    case 'LOGOUTERROR':
      // The message is authtrail's fixed text, never the store's error.
      return build({ data: clean(failureData(event, client, true)) })
    case 'SESSIONTIMEOUT':
      return build({ data: clean({ HttpSessionId: event.sessionId, UserName: event.username }) })
    case 'SESSIONEND':
      return build({ data: clean({ HttpSessionId: event.sessionId, UserName: event.username, Reason: event.message }) })
    case 'AUDIT_GAP':
      return build({ data: clean({
        GapEvents: String(event.gap?.events ?? 0),
        GapFrom: new Date(event.gap?.from ?? event.time).toISOString(),
        GapTo: new Date(event.gap?.to ?? event.time).toISOString(),
        Reason: event.message,
      }) })
    case 'LOCKOUT':
      return build({ data: clean({
        Scope: event.lockout?.scope ?? '',
        UserName: event.username,
        IP: event.ip,
        Attempts: String(event.lockout?.attempts ?? 0),
        WindowSeconds: String(event.lockout?.windowSeconds ?? 0),
        BlockedUntil: new Date(event.lockout?.until ?? event.time).toISOString(),
        Enforced: String(event.lockout?.enforced ?? false),
      }) })
    case 'AUDIT_ACCESS':
      return build({ data: clean({
        UserName: event.username,
        Action: event.access?.action ?? '',
        Filter: event.access?.filter ?? '',
        Rows: String(event.access?.rows ?? 0),
        Channel: event.access?.channel ?? '',
        HttpSessionId: event.sessionId,
      }) })
  }
}

export const PROFILE_FIELDS = ['email', 'fullusername', 'phone', 'snils', 'firstname', 'lastname', 'middlename', 'gender', 'birthdate', 'birthplace'] as const satisfies ReadonlyArray<keyof UserProfile>

/**
 * Showcase's `<sessioncontext>`, children in Showcase's order. Two children are authtrail's own, after
 * `<related/>`: `<eventid>` (so a replay never stores an event twice) and `<eventtime>` (ISO 8601 UTC,
 * so an event delivered late keeps the time it happened); the shipped procedures read both.
 */
export function buildSessionContextXml(event: AuditEvent, client: ClientInfo): string {
  // After a failed login nobody is signed in: the name that was tried is in <data>'s errorData/username.
  const signedIn = event.type === 'LOGINERROR' ? '' : event.username
  const context: XmlTree = {
    username: signedIn,
    sid: event.userId,
    login: signedIn,
    sessionid: event.sessionId,
  }
  for (const field of PROFILE_FIELDS) context[field] = event.profile[field] ?? ''
  context.trusted = ''
  context.ip = event.ip
  if (event.userAgent !== '') {
    context.browsertype = client.browser
    context.browserversion = client.browserVersion
  }
  if (event.urlParams.length > 0) {
    context.urlparams = { urlparam: event.urlParams.map(([name, value]) => ({ name, value })) }
  }
  context.userdata = 'default'
  context.related = ''
  context.eventid = event.id
  context.eventtime = new Date(event.time).toISOString()
  return build({ sessioncontext: clean(context) })
}

/** Turns captured facts into the procedure's arguments. */
export type Describer = (event: AuditEvent) => DescribedEvent

/**
 * Returns a function that turns captured facts into the procedure's arguments. It owns a User-Agent
 * cache, so each authtrail instance makes its own.
 */
export function createDescriber(cacheSize?: number): Describer {
  const clientInfo = createClientInfoParser(cacheSize)
  return (event) => {
    const client = clientInfo(event.userAgent)
    return { event, data: buildDataXml(event, client), sessionContext: buildSessionContextXml(event, client) }
  }
}

/**
 * Describes a batch for a sink. An event that cannot be described is set aside with a permanent error:
 * the outbox parks it at once rather than retrying what would fail the same way, and the others go on.
 */
export function describeBatch(events: readonly AuditEvent[], describe: Describer): { described: DescribedEvent[]; failed: Map<string, Error> } {
  const described: DescribedEvent[] = []
  const failed = new Map<string, Error>()
  for (const event of events) {
    try {
      described.push(describe(event))
    } catch (err) {
      failed.set(event.id, Object.assign(new Error(`could not describe the event: ${(err as Error)?.message ?? String(err)}`), { permanent: true }))
    }
  }
  return { described, failed }
}

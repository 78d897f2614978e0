import type { ClientInfo } from '../../src/describe/client-info.js'
import type { AuditEvent, UserProfile } from '../../src/types.js'

/**
 * An oracle for authtrail's XML, written independently of src/describe: what each document must contain
 * for an event, so that tests can compare the parsed document with it element by element.
 */

// ---------------------------------------------------------------------------------------------------------
// Oracle: XML 1.0 §2.2 Char, written independently of src/describe/xml-text.ts.
// ---------------------------------------------------------------------------------------------------------

export function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
}

const safeCache = new Map<string, string>()
/** `text` with each character XML 1.0 forbids replaced by U+FFFD; `for...of` yields a lone surrogate on its own. */
export function xmlSafe(text: string): string {
  let safe = safeCache.get(text)
  if (safe === undefined) {
    const parts: string[] = []
    for (const ch of text) parts.push(isXmlChar(ch.codePointAt(0)!) ? ch : '\uFFFD')
    safe = parts.join('')
    safeCache.set(text, safe)
  }
  return safe
}

/**
 * What fast-xml-parser gives back for a text node. With `htmlEntities: false` it does not decode numeric
 * character references, so the CR that authtrail writes as `&#13;` comes back as the six characters `&#13;`;
 * the CR round trip itself is checked with libxml2 (PGlite) and with `htmlEntities: true` below.
 */
export function viaFxp(text: string): string {
  return xmlSafe(text).replaceAll('\r', '&#13;')
}

export const PROFILE_FIELDS = ['email', 'fullusername', 'phone', 'snils', 'firstname', 'lastname', 'middlename', 'gender', 'birthdate', 'birthplace'] as const satisfies ReadonlyArray<keyof UserProfile>
// ---------------------------------------------------------------------------------------------------------
// Expected documents, as trees of text (element name -> text | subtree | list of subtrees)
// ---------------------------------------------------------------------------------------------------------

export type Tree = { [element: string]: string | Tree | Tree[] }

/** LOGINERROR's tree, which LOGOUTERROR shares with `extra` (its UserName) after the message. */
function failureData(event: AuditEvent, client: ClientInfo, text: (s: string) => string, extra: Tree): Tree {
  return {
    SecurityLastExeption: text(event.message),
    ...extra,
    OS: text(client.os),
    IP: text(event.ip),
    UserAgent: text(event.userAgent.toLowerCase()),
    OSVersion: text(client.osVersion),
    Host: text(event.host),
    BrowserVersion: text(client.browserVersion),
    errorData: { password: '', Message: text(event.message), domain: '', name: text(event.method), username: text(event.username) },
    HttpSessionId: text(event.sessionId),
    Browser: text(client.browser),
  }
}

/** The `<data>` tree for an event, each text passed through `text` (see {@link viaFxp} / {@link xmlSafe}). */
export function expectedData(event: AuditEvent, client: ClientInfo, text: (s: string) => string): Tree {
  switch (event.type) {
    case 'LOGIN':
      return {
        HttpSessionId: text(event.sessionId),
        UserName: text(event.username),
        Browser: text(client.browser),
        BrowserVersion: text(client.browserVersion),
        IP: text(event.ip),
        Host: text(event.host),
        OS: text(client.os),
        OSVersion: text(client.osVersion),
        UserAgent: text(event.userAgent.toLowerCase()),
        ...(event.priorFailures ? { PriorFailures: String(event.priorFailures) } : {}),
      }
    case 'LOGINERROR':
      return failureData(event, client, text, {})
    case 'LOGOUT':
      return { HttpSessionId: text(event.sessionId) }
    case 'LOGOUTERROR':
      return failureData(event, client, text, { UserName: text(event.username) })
    case 'SESSIONTIMEOUT':
      return { HttpSessionId: text(event.sessionId), UserName: text(event.username) }
    case 'SESSIONEND':
      return { HttpSessionId: text(event.sessionId), UserName: text(event.username), Reason: text(event.message) }
    case 'AUDIT_GAP':
      return {
        GapEvents: String(event.gap?.events ?? 0),
        GapFrom: new Date(event.gap?.from ?? event.time).toISOString(),
        GapTo: new Date(event.gap?.to ?? event.time).toISOString(),
        Reason: text(event.message),
      }
    case 'LOCKOUT':
      return {
        Scope: event.lockout?.scope ?? '',
        UserName: text(event.username),
        IP: text(event.ip),
        Attempts: String(event.lockout?.attempts ?? 0),
        WindowSeconds: String(event.lockout?.windowSeconds ?? 0),
        BlockedUntil: new Date(event.lockout?.until ?? event.time).toISOString(),
        Enforced: String(event.lockout?.enforced ?? false),
      }
    case 'AUDIT_ACCESS':
      return {
        UserName: text(event.username),
        Action: text(event.access?.action ?? ''),
        Filter: text(event.access?.filter ?? ''),
        Rows: String(event.access?.rows ?? 0),
        Channel: text(event.access?.channel ?? ''),
        HttpSessionId: text(event.sessionId),
      }
  }
}

export function expectedSessionContext(event: AuditEvent, client: ClientInfo, text: (s: string) => string): Tree {
  const signedIn = event.type === 'LOGINERROR' ? '' : text(event.username)
  const tree: Tree = { username: signedIn, sid: text(event.userId), login: signedIn, sessionid: text(event.sessionId) }
  for (const field of PROFILE_FIELDS) tree[field] = text(event.profile[field] ?? '')
  tree.trusted = ''
  tree.ip = text(event.ip)
  if (event.userAgent !== '') {
    tree.browsertype = text(client.browser)
    tree.browserversion = text(client.browserVersion)
  }
  if (event.urlParams.length > 0) tree.urlparams = { urlparam: event.urlParams.map(([name, value]) => ({ name: text(name), value: text(value) })) }
  tree.userdata = 'default'
  tree.related = ''
  tree.eventid = text(event.id)
  tree.eventtime = new Date(event.time).toISOString()
  return tree
}

/** Element names of a tree, the root included, once per occurrence. */
export function elementsOf(root: string, tree: Tree): string[] {
  const names = [root]
  for (const [name, value] of Object.entries(tree)) {
    if (typeof value === 'string') names.push(name)
    else if (Array.isArray(value)) for (const item of value) names.push(...elementsOf(name, item))
    else names.push(...elementsOf(name, value))
  }
  return names
}

/** Start tags actually present in the XML text. Escaped `&lt;` never matches, so only real markup counts. */
export function startTags(xml: string): string[] {
  return [...xml.matchAll(/<([A-Za-z_][\w.:-]*)[\s/>]/g)].map((m) => m[1]!)
}


import { XMLParser } from 'fast-xml-parser'
import type { AuditRow } from './audit-query.js'

/**
 * Reads an event's documents back into fields for people. The XML is authtrail's own, or whatever a
 * procedure of the operator's stored, so nothing in it is trusted: values come out as text for the page
 * to escape, and a document that does not parse is shown raw only.
 */
const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: true,
  // Decodes the &#13; authtrail writes for a CR; &amp;nbsp; stays the text "&nbsp;" (no double decoding).
  htmlEntities: true,
})

type Node = string | { [name: string]: Node | Node[] }

function flatten(node: Node | Node[], path: string, out: Array<readonly [string, string]>): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => flatten(item, `${path}[${i + 1}]`, out))
  } else if (typeof node === 'object' && node !== null) {
    const entries = Object.entries(node)
    if (entries.length === 0) out.push([path, ''])
    for (const [name, child] of entries) flatten(child, path === '' ? name : `${path}/${name}`, out)
  } else {
    out.push([path, String(node ?? '')])
  }
}

/** The fields of one document as `[path, text]` pairs below its root (`errorData/username`), in order. */
export function xmlFields(xml: string): Array<readonly [string, string]> | undefined {
  try {
    const tree = parser.parse(xml) as Record<string, Node>
    const [root] = Object.keys(tree)
    if (root === undefined) return undefined
    const out: Array<readonly [string, string]> = []
    flatten(tree[root]!, '', out)
    return out
  } catch {
    return undefined
  }
}

/** What the review shows of an event's client: from `<data>`, else from `<sessioncontext>`. */
export interface EventClient {
  readonly browser: string
  readonly os: string
  readonly ip: string
}

/** The browser, OS and address an event names. */
export function eventClient(row: AuditRow): EventClient {
  const data = new Map(xmlFields(row.data) ?? [])
  const context = new Map(xmlFields(row.session_context) ?? [])
  const join = (name: string | undefined, version: string | undefined) => [name, version].filter((part) => part !== undefined && part !== '').join(' ')
  return {
    browser: join(data.get('Browser') ?? context.get('browsertype'), data.get('BrowserVersion') ?? context.get('browserversion')),
    os: join(data.get('OS'), data.get('OSVersion')),
    ip: data.get('IP') ?? context.get('ip') ?? row.ip,
  }
}

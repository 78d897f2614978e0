/**
 * HTML built from a tagged template that escapes every interpolated value, so that a value from the
 * outside world (a User-Agent, a username, a stored XML document) is always text, never markup. Only
 * an {@link Html} made by this template goes in as it is. Attribute values must be double-quoted in the
 * templates; the escaping covers both quote characters anyway.
 */
const RAW = Symbol('authtrail.html')

/** A fragment this module built: inserted as it is into other fragments. */
export interface Html {
  readonly [RAW]: string
}

const SPECIAL = /[&<>"']/
const SPECIALS = /[&<>"']/g
const ENTITY: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for HTML content and attribute values; text with nothing to escape is returned as it is. */
export function escapeHtml(text: string): string {
  return SPECIAL.test(text) ? text.replace(SPECIALS, (c) => ENTITY[c]!) : text
}

function piece(value: unknown): string {
  if (value === undefined || value === null || value === false) return ''
  if (Array.isArray(value)) return value.map(piece).join('')
  if (typeof value === 'object' && RAW in value) return (value as Html)[RAW]
  return escapeHtml(String(value))
}

/** `html\`<td>${name}</td>\``: values are escaped; arrays are joined; undefined, null and false are empty. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1]!
  return { [RAW]: out }
}

/** The text of a built fragment. */
export function renderHtml(fragment: Html): string {
  return fragment[RAW]
}

/**
 * Characters XML 1.0 forbids (§2.2 Char): C0 controls other than tab/LF/CR, lone surrogates, U+FFFE/U+FFFF.
 * Showcase wrote raw header values into its XML, so one control character made the document malformed
 * and the LOGINERROR was lost (see shared/showcase-reference.md); authtrail replaces them instead.
 */
const ILLEGAL_XML_CHARS = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu
const HAS_ILLEGAL_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u

/** Replacement for an illegal character, so that the reader can see something was there. */
export const REPLACEMENT_CHARACTER = '\uFFFD'

/**
 * Returns `text` with every character illegal in XML 1.0 replaced by U+FFFD.
 * Fast path: text that needs no change is returned as it is, without allocating.
 */
export function toXmlChars(text: string): string {
  return HAS_ILLEGAL_XML_CHAR.test(text) ? text.replace(ILLEGAL_XML_CHARS, REPLACEMENT_CHARACTER) : text
}

/**
 * Cuts `text` to at most `max` UTF-16 units without splitting a surrogate pair, so that truncating a
 * 100 KB header never leaves half a character behind.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text
  const last = text.charCodeAt(max - 1)
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max)
}

const utf8 = new TextEncoder()

/**
 * Cuts `text` to at most `maxBytes` bytes of UTF-8, on a character boundary. Fast path: text that
 * cannot be longer (3 bytes per UTF-16 unit at most) is returned as it is.
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text
  // encodeInto writes whole characters only, and says how many UTF-16 units it read.
  return text.slice(0, utf8.encodeInto(text, new Uint8Array(maxBytes)).read)
}

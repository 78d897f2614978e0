import fc from 'fast-check'

/** 10,000 cases per property in CI; fewer on a laptop unless asked (AUTHTRAIL_PROPERTY_RUNS). */
export const NUM_RUNS = process.env.CI === 'true' ? 10_000 : Number(process.env.AUTHTRAIL_PROPERTY_RUNS ?? 1000)

/** Any code point, lone surrogates included, and the pieces of XML an attacker would reach for. */
const anyCodePoint = fc.integer({ min: 0, max: 0x10ffff }).map((cp) => String.fromCodePoint(cp))
const TOKENS = ['<', '>', '&', ';', ']]>', '<![CDATA[', '"', "'", '\u0000', '\u0007', '\u001b', '\r', '\n', '\t', '\uD800', '\uDBFF', '\uDC00', '\uFFFE', '\uFFFF', '\uFFFD', '&amp;', '&#13;', '&lt;', '</UserName><IP>1.2.3.4</IP>', '<data>', '</sessioncontext>', '<?xml version="1.0"?>', '<!DOCTYPE x [<!ENTITY e "b">]>&e;', '😀', 'İ', 'ß', 'Σ']
export const hostileString = fc.oneof(
  fc.string({ unit: anyCodePoint, maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.array(fc.oneof(fc.constantFrom(...TOKENS), fc.string({ unit: anyCodePoint, maxLength: 3 }), fc.string({ unit: 'grapheme-ascii', maxLength: 6 })), { maxLength: 10 }).map((parts) => parts.join('')),
)


/** Every string inside a value: an event, or a parsed document. */
export function texts(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value)
  else if (Array.isArray(value)) for (const item of value) texts(item, out)
  else if (value !== null && typeof value === 'object') for (const item of Object.values(value)) texts(item, out)
  return out
}

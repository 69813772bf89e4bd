/**
 * Text as PostgreSQL can store it: without NUL characters, and with lone UTF-16 surrogates
 * (which JSON allows and text columns refuse) replaced by U+FFFD.
 */
export function storableText(value: string): string {
  return value
    .replace(/\u0000/g, '')
    .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
}

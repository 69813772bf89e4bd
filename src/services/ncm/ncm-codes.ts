/** NCM codes as the table stores them: digits only ("8542.31.90" → "85423190"). */
export function ncmDigits(code: string): string {
  return code.trim().replace(/[.\s-]/g, '')
}

/** "85423190" → "8542.31.90", "85423" → "8542.3", as Siscomex writes them. */
export function formatNcmCode(digits: string): string {
  if (digits.length <= 2) return digits
  if (digits.length <= 4) return `${digits.slice(0, 2)}.${digits.slice(2)}`
  if (digits.length <= 6) return `${digits.slice(0, 4)}.${digits.slice(4)}`
  return `${digits.slice(0, 4)}.${digits.slice(4, 6)}.${digits.slice(6)}`
}

/** The codes that may hold an entry of the path from its chapter down to it: its prefixes at 2, 4, 5, 6, 7 digits, and itself. */
export function pathCodes(digits: string): string[] {
  return [2, 4, 5, 6, 7].filter((n) => n < digits.length).map((n) => digits.slice(0, n)).concat(digits)
}

export const NCM_DIGITS = /^[0-9]{2,8}$/

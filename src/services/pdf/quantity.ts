/**
 * Read a quantity cell: "1.000" and "1,000" are a thousand (Brazilian and English grouping),
 * "2,5" and "2.5" two and a half, "1.234,50" and "1,234.50" both 1234.5; a trailing unit
 * ("10 pcs", "100 UN") is ignored. Returns undefined when the cell holds no number.
 */
export function parseQuantity(cell: string | undefined): number | undefined {
  if (!cell) return undefined
  const m = /^\s*(\d[\d.,\s]*?)\s*(?:[A-Za-zçÇ.]{1,6})?\s*$/.exec(cell)
  if (!m) return undefined
  const raw = m[1]!.replace(/\s/g, '')
  const dots = (raw.match(/\./g) ?? []).length
  const commas = (raw.match(/,/g) ?? []).length
  let normalized: string
  if (dots && commas) {
    // The separator that comes last is the decimal one.
    const decimal = raw.lastIndexOf('.') > raw.lastIndexOf(',') ? '.' : ','
    const group = decimal === '.' ? ',' : '.'
    normalized = raw.split(group).join('').replace(decimal, '.')
  } else if (dots + commas === 0) {
    normalized = raw
  } else {
    const sep = dots ? '.' : ','
    const groups = raw.split(sep)
    const grouping = groups.length > 2 || (/^[1-9]\d{0,2}$/.test(groups[0]!) && groups[1]!.length === 3)
    normalized = grouping ? groups.join('') : groups.join('.')
    if (grouping && !groups.slice(1).every((g) => g.length === 3)) return undefined
  }
  const value = Number(normalized)
  return Number.isFinite(value) ? value : undefined
}

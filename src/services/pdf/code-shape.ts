import { isPackageOrMeasure, isPartNumber, tokenize } from './classify-token.js'

/**
 * How part numbers are cut out of a cell or a description token: attribute lists split, a generic
 * name dropped beside its full part number, a labelled cell kept whole with its inner spaces and
 * punctuation.
 */

/**
 * "1N5822/SS34/SMA" lists alternates and a package; "10R/R0402" a value and a footprint;
 * "DHT22/AM2302" two names of one part: split at "/" when a piece is a package or a value, or when
 * two pieces are part numbers by themselves. "LM2596S-5.0/NOPB", "LM358M/TR", "MCP4922-E/P" stay whole.
 */
export function splitAttributes(token: string): string[] {
  const pieces = token.split('/')
  if (pieces.length < 2 || pieces.some((p) => !p)) return [token]
  const listLike = pieces.some((p) => isPackageOrMeasure(p)) || pieces.filter((p) => isPartNumber(p, 'free')).length >= 2
  return listLike ? pieces : [token]
}

/** Drop a code contained in a longer one of the same cell: "74HC367 SN74HC367N" is SN74HC367N. */
export function dropContained(codes: string[]): string[] {
  const upper = codes.map((c) => c.toUpperCase())
  return codes.filter((c, i) => !upper.some((u, j) => j !== i && u.length > upper[i]!.length && u.includes(upper[i]!)))
}

/** A parenthesised package, footprint or packing note glued to a code: "LAN8710A-EZC(QFN32)". */
function stripPackage(chunk: string): string {
  return chunk.replace(/\(([^()]*)\)$/, (whole, inner: string) => (isPackageOrMeasure(inner) ? '' : whole))
}

/**
 * The whole cell of a part-number column as one code, when it is one: pieces separated by spaces
 * of which at most one is a part number by itself ("PTS645SL43-2 LFS", "NCP 1117 ST50T3G",
 * "ATMEGA 328PB-AU"), or one piece with inner punctuation ("BC847B,215", "B2B-XH-A(LF)(SN)").
 * A leading count ("5 x 5GTH935") is not part of it. Null when the cell holds several codes or none.
 */
export function wholeCellCode(cell: string): string | null {
  const text = cell.trim().replace(/^\d+\s*[x×]\s+/i, '')
  const pieces = text.split(/\s+/).filter(Boolean)
  if (!pieces.length || pieces.length > 4 || text.length > 40) return null
  if (pieces.some((p) => !/^[A-Za-z0-9][A-Za-z0-9\-./+#_(),]*$/.test(p) || /,$/.test(p))) return null
  if (pieces.length === 1) {
    const code = stripPackage(pieces[0]!)
    if (!/[(),]/.test(code) || !balanced(code)) return null
    const base = code.replace(/\([^()]*\)/g, '').replace(/,.*$/, '')
    return isPartNumber(base, 'labelled') ? code : null
  }
  const standalone = pieces.filter((p) => tokenize(p).some((t) => isPartNumber(t.token, 'free')))
  if (standalone.length !== 1) return null
  // "BC847 SOT23", "LM358 8SOIC": the other pieces are a package or a value, not part of the code.
  // "62256 AS6C62256-55PCN", "4.9152 MHz ECS-49-20-1X": a generic name or a value beside the code.
  const code = standalone[0]!.toUpperCase()
  const others = pieces.filter((p) => p !== standalone[0])
  // Words in lower case ("profile", "e.g. Walsin") are prose around the code, not a piece of it.
  const apart = (p: string) =>
    isPackageOrMeasure(p) || code.includes(p.toUpperCase()) || /^\d+[.,]\d+$/.test(p) || UNIT_WORD.test(p) || /[a-z]{2}/.test(p)
  return others.some(apart) ? null : pieces.join(' ')
}

const UNIT_WORD = /^[pnuµmkMG]?(?:Hz|F|H|V|A|W|Ohms?|Ω|%)$/

function balanced(s: string): boolean {
  let depth = 0
  for (const ch of s) {
    depth += ch === '(' ? 1 : ch === ')' ? -1 : 0
    if (depth < 0) return false
  }
  return depth === 0
}

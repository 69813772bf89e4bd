import { isPartNumber, tokenize } from './classify-token.js'
import type { Row, TableHeader } from './table.js'

/**
 * Which columns of a table give part numbers, decided by the header's words and by what the cells
 * look like. Why both: headers are often ambiguous ("Part No." over a Digi-Key column, "Value" or
 * "ID" over a manufacturer part number in some BOMs and over "10k" in others) and the cells settle it.
 */
export interface ColumnRoles {
  /** Manufacturer part-number columns, best first: read first on every row. */
  manufacturer: number[]
  /** Generic code columns (maybe the buyer's own code): read only when nothing else gives a code. */
  generic: number[]
  /** Distributor, seller and internal code columns (including generic ones of numbers only): their codes are never returned. */
  excluded: number[]
}

/**
 * Digi-Key's "-ND" codes, Mouser's "595-" prefix before a manufacturer code, the all-digit order
 * codes of Farnell, RS, Reichelt, TME (6 to 8 digits, maybe grouped) and Amazon's ASINs. Judged
 * over a whole column: a few manufacturer codes have the same shape (Keystone 302-S101).
 */
export function isDistributorCode(cell: string): boolean {
  const t = cell.trim()
  return isSellerCode(t) || /^\d{3}-?\d{3,5}$/.test(t) || /^\d{6,8}$/.test(t) || /^\d{3}-(?=\S*[A-Z])\S{3,}$/i.test(t)
}

/** Codes that are a seller's by their shape alone, wherever they stand: Digi-Key "…-ND", Amazon ASINs. */
export function isSellerCode(code: string): boolean {
  return /^\S+-ND$/i.test(code) || /^B0[0-9A-Z]{8}$/.test(code)
}

/** A cell whose whole content is one code a reader would take for a manufacturer part number. */
function looksLikePartNumber(cell: string): boolean {
  const tokens = tokenize(cell)
  return tokens.length > 0 && tokens.length <= 3 && tokens.some((t) => isPartNumber(t.token, 'free'))
}

/** Share of a column's non-empty cells that pass `test`; 0 for an empty column. */
function share(rows: Row[], index: number, test: (cell: string) => boolean): number {
  const cells = rows.map((r) => (r.cells[index] ?? '').trim()).filter(Boolean)
  return cells.length ? cells.filter(test).length / cells.length : 0
}

const isAllDigitCode = (cell: string) => /^\d[\d\s./-]*$/.test(cell.trim())

/** Nearly all filled cells of a generic code column are numbers: an internal item code. */
const INTERNAL_SHARE = 0.8
/** Most filled cells are distributor codes: a seller's column whatever its header says. */
const DISTRIBUTOR_SHARE = 0.5
/** Enough part-number-like cells (each still checked strictly) for a column headed "Value", "Name", "ID"… to be read as part numbers. */
const PART_SHARE = 0.3

export function columnRoles(header: TableHeader, rows: Row[]): ColumnRoles {
  const roles: ColumnRoles = { manufacturer: [], generic: [], excluded: [] }
  const candidates: Array<{ index: number; score: number }> = []
  header.columns.forEach((col, i) => {
    if (col.kind === 'order' || col.kind === 'internal') return void roles.excluded.push(i)
    if (col.kind !== 'pn' && col.kind !== 'value') return
    if (share(rows, i, isDistributorCode) >= DISTRIBUTOR_SHARE) return void roles.excluded.push(i)
    if (col.kind === 'pn' && col.rank === 1) return void roles.manufacturer.push(i)
    // A generic "Code"/"Referencia" column of numbers only is the buyer's (or seller's) item code.
    if (col.kind === 'pn') return void (share(rows, i, isAllDigitCode) >= INTERNAL_SHARE ? roles.excluded : roles.generic).push(i)
    const score = share(rows, i, looksLikePartNumber)
    if (score >= PART_SHARE) candidates.push({ index: i, score })
  })
  if (!roles.manufacturer.length) roles.manufacturer = candidates.sort((a, b) => b.score - a.score).map((c) => c.index)
  // "Invoice Date | Due Date | Reference": without a description, quantity or part-number column
  // this is a document's info block, and its generic code is the document's reference.
  const itemTable = roles.manufacturer.length > 0 || header.columns.some((c) => c.kind === 'desc' || c.kind === 'qty')
  if (!itemTable) roles.generic = []
  return roles
}

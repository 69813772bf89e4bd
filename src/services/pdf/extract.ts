import { tokenize } from './classify-token.js'
import { columnRoles, isSellerCode, type ColumnRoles } from './column-roles.js'
import { buildLines } from './layout.js'
import { parseQuantity } from './quantity.js'
import { readPdfText } from './read-pdf.js'
import { readPage } from './reading-order.js'
import type { Row, TableHeader } from './table.js'
import { cellCodes, descriptionCodes, prefixedCodes } from './text-scan.js'
import type { ExtractedPart, ExtractionResult, ExtractOptions, TextItem } from './types.js'

/**
 * Extract the part numbers of a purchase-order PDF, in order of first appearance. `pdf` is left
 * untouched (pdfjs consumes a private copy).
 *
 * Duplicates (same code, case-insensitive) are merged into the first occurrence, which keeps its
 * page, line, spelling and description; quantities of all occurrences are summed, because an order
 * listing the same part twice wants both amounts.
 *
 * Runs on the calling thread; use the extraction pool in request handlers.
 * @throws PdfRejectedError with code not_pdf | empty | too_many_pages | too_large_decompressed | too_complex | encrypted | corrupt
 */
export async function extractPartNumbers(pdf: Uint8Array, options: ExtractOptions = {}): Promise<ExtractionResult> {
  return extractOwned(new Uint8Array(pdf), options)
}

/**
 * Same, for bytes nobody else holds: pdfjs transfers (detaches) the buffer it is given, so the
 * public entry copies and the extraction child, which received its own copy over IPC, does not.
 */
export async function extractOwned(pdf: Uint8Array, options: ExtractOptions = {}): Promise<ExtractionResult> {
  const pages = await readPdfText(pdf, options)
  return extractFromPages(pages)
}

/** The pure part: oriented text runs per page in, part numbers out. */
export function extractFromPages(pages: TextItem[][]): ExtractionResult {
  const parts = new PartCollector()
  let carried: TableHeader | null = null
  pages.forEach((items, index) => {
    const page = index + 1
    const { blocks, lineNo, openTable } = readPage(buildLines(items), carried)
    carried = openTable
    for (const block of blocks) {
      if (block.kind === 'text') {
        for (const line of block.lines) {
          for (const code of prefixedCodes(line.text)) parts.add(code, page, lineNo.get(line)!)
        }
        continue
      }
      const roles = columnRoles(block.header, block.rows)
      for (const row of block.rows) {
        const { codes, description, quantity } = readRow(row, block.header, roles)
        for (const code of codes) parts.add(code, page, lineNo.get(row.line)!, description, quantity)
      }
    }
  })
  return { pages: pages.length, part_numbers: parts.list() }
}

/**
 * Codes of one item row, best source first: the manufacturer part-number columns, else codes that
 * look like part numbers inside the description, else a generic code column (which is often the
 * buyer's own item code). Explicit PN:/MPN prefixes anywhere in the row always count. Codes found
 * in the row's distributor or internal code columns are never returned.
 */
function readRow(row: Row, header: TableHeader, roles: ColumnRoles): { codes: string[]; description?: string; quantity?: number } {
  const cols = header.columns
  const cell = (i: number) => row.cells[i] ?? ''
  const descIndex = cols.findIndex((c) => c.kind === 'desc')
  const qtyIndex = cols.findIndex((c) => c.kind === 'qty')
  const description = descIndex >= 0 ? cell(descIndex).replace(/\s+/g, ' ').trim() || undefined : undefined

  const sources: Array<() => string[]> = [
    ...roles.manufacturer.map((i) => () => cellCodes(cell(i), cols[i]!.kind === 'pn' ? 'labelled' : 'free')),
    ...(roles.manufacturer.length ? [] : roles.generic.map((i) => () => cellCodes(cell(i)))),
    () => (description ? descriptionCodes(description) : []),
    ...(roles.manufacturer.length ? roles.generic.map((i) => () => cellCodes(cell(i))) : []),
  ]
  let codes: string[] = []
  for (const source of sources) {
    codes = source()
    if (codes.length) break
  }
  codes = [...codes, ...prefixedCodes(row.cells.join('  '))]
  const excluded = new Set(roles.excluded.flatMap((i) => tokenize(cell(i)).map((t) => t.token.toUpperCase())))
  const unique = [...new Map(codes.filter((c) => !excluded.has(c.toUpperCase()) && !isSellerCode(c)).map((c) => [c.toUpperCase(), c])).values()]
  const quantity = qtyIndex >= 0 ? parseQuantity(cell(qtyIndex)) : undefined
  return { codes: unique, description, quantity }
}

class PartCollector {
  private readonly byKey = new Map<string, ExtractedPart>()

  add(code: string, page: number, line: number, description?: string, quantity?: number): void {
    const key = code.trim().toUpperCase()
    const seen = this.byKey.get(key)
    if (!seen) {
      const part: ExtractedPart = { partnumber: code.trim(), page, line }
      if (description !== undefined) part.description = description
      if (quantity !== undefined) part.quantity = quantity
      this.byKey.set(key, part)
      return
    }
    // Rounded so that summing 0.1 + 0.2 metres of cable reads 0.3.
    if (quantity !== undefined) seen.quantity = Math.round(((seen.quantity ?? 0) + quantity) * 1e6) / 1e6
    if (seen.description === undefined && description !== undefined) seen.description = description
  }

  list(): ExtractedPart[] {
    return [...this.byKey.values()]
  }
}

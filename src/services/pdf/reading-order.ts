import { sideOf } from './layout.js'
import { buildRows, detectHeader, fitColumns, fitsTable, headerSplit, tableEnd, type Row, type TableHeader } from './table.js'
import type { Line } from './types.js'

/** A piece of a page in reading order: free text, or an item table. */
export type Block =
  | { kind: 'text'; lines: Line[] }
  | { kind: 'table'; header: TableHeader; headerLines: Line[]; body: Line[]; rows: Row[] }

export interface PageBlocks {
  blocks: Block[]
  /** Line numbers (1-based, reading order) of every line in the blocks. */
  lineNo: Map<Line, number>
  /** The page ends inside this table; the next page may continue it without repeating the header. */
  openTable: TableHeader | null
}

/**
 * Arrange a page's lines (top to bottom) into blocks in reading order and number the lines.
 * Two-column regions (a gutter running down the middle, or two item tables side by side) are read
 * left column first. Tables are found before columns so that a table's own column gaps are never
 * mistaken for a page gutter.
 */
export function readPage(lines: Line[], carried: TableHeader | null): PageBlocks {
  const extent = lines.length
    ? { x0: Math.min(...lines.map((l) => l.x0)), x1: Math.max(...lines.map((l) => l.x1)) }
    : { x0: 0, x1: 0 }
  const { blocks, openTable } = walk(lines, carried, extent, true)
  const lineNo = new Map<Line, number>()
  for (const block of blocks) {
    const own = block.kind === 'text' ? block.lines : [...block.headerLines, ...block.body]
    for (const line of own) lineNo.set(line, lineNo.size + 1)
  }
  return { blocks, lineNo, openTable }
}

function walk(
  lines: Line[],
  carried: TableHeader | null,
  extent: { x0: number; x1: number },
  allowSplit: boolean,
): { blocks: Block[]; openTable: TableHeader | null } {
  const blocks: Block[] = []
  const headers = new Map<number, ReturnType<typeof detectHeader>>()
  const headerAt = (k: number) => {
    if (!headers.has(k)) headers.set(k, detectHeader(lines, k))
    return headers.get(k) ?? null
  }
  const isHeader = (k: number) => headerAt(k) !== null
  let last: { header: TableHeader; end: number } | null = null
  let sawHeader = false
  let i = 0

  const text = (line: Line) => {
    const tail = blocks[blocks.length - 1]
    if (tail?.kind === 'text') tail.lines.push(line)
    else blocks.push({ kind: 'text', lines: [line] })
  }
  const halves = (from: number, to: number, x: number) => {
    const region = lines.slice(from, to)
    const left = region.map((l) => sideOf(l, x, 'left')).filter((l): l is Line => l !== null)
    const right = region.map((l) => sideOf(l, x, 'right')).filter((l): l is Line => l !== null)
    for (const side of [left, right]) blocks.push(...walk(side, null, extent, false).blocks)
  }

  while (i < lines.length) {
    const found = headerAt(i)
    if (found) {
      sawHeader = true
      const split = allowSplit ? headerSplit(found.header) : null
      if (split !== null) {
        const end = gutterRegionEnd(lines, i + found.consumed, split)
        halves(i, end, split)
        i = end
        continue
      }
      const bodyStart = i + found.consumed
      const end = tableEnd(lines, bodyStart, found.header, isHeader)
      const body = lines.slice(bodyStart, end)
      const header = fitColumns(found.header, body)
      blocks.push({ kind: 'table', header, headerLines: lines.slice(i, bodyStart), body, rows: buildRows(body, header) })
      last = { header, end }
      i = end
      continue
    }
    const line = lines[i]!
    if (carried && !sawHeader && fitsTable(line, carried)) {
      const end = tableEnd(lines, i, { ...carried, y: line.y - line.size }, isHeader)
      const body = lines.slice(i, end)
      const header = fitColumns(carried, body)
      blocks.push({ kind: 'table', header, headerLines: [], body, rows: buildRows(body, header) })
      last = { header, end }
      sawHeader = true
      i = end
      continue
    }
    if (allowSplit) {
      // A table continued from the previous page must not be read as two columns either.
      const stop = (k: number) => isHeader(k) || (carried !== null && !sawHeader && fitsTable(lines[k]!, carried))
      const run = gutterRun(lines, i, extent, stop)
      if (run) {
        halves(i, run.end, run.x)
        i = run.end
        continue
      }
    }
    text(line)
    i++
  }
  // A table still runs at the bottom of the page when at most a footer (two lines) follows it.
  const openTable = last && last.end >= lines.length - 2 ? last.header : null
  return { blocks, openTable }
}

/** Side-by-side tables continue while no line crosses the split and rows stay close together. */
function gutterRegionEnd(lines: Line[], start: number, x: number): number {
  let k = start
  for (; k < lines.length; k++) {
    const line = lines[k]!
    const prev = lines[k - 1]!
    if (line.y - prev.y > 3.5 * line.size) break
    if (line.segments.some((s) => s.x0 < x && s.x1 > x)) break
  }
  return k
}

/**
 * A run of lines sharing an empty vertical band in the middle half of the page, with text on both
 * sides of it in at least three lines each, is a two-column region. Lines holding text on one side
 * only belong to it too, so columns whose baselines do not line up are still paired.
 */
function gutterRun(
  lines: Line[],
  start: number,
  extent: { x0: number; x1: number },
  stop: (k: number) => boolean,
): { end: number; x: number } | null {
  const width = extent.x1 - extent.x0
  const zone: Interval = [extent.x0 + 0.25 * width, extent.x0 + 0.75 * width]
  const minGap = (line: Line) => Math.max(12, 1.2 * line.size)
  let free = freeIntervals(lines[start]!, zone).filter(([a, b]) => b - a >= minGap(lines[start]!))
  if (!free.length) return null
  let best: { end: number; x: number } | null = null
  for (let k = start + 1; k <= lines.length; k++) {
    const band = widest(free)!
    const x = (band[0] + band[1]) / 2
    const region = lines.slice(start, k)
    const left = region.filter((l) => l.x0 < x).length
    const right = region.filter((l) => l.x1 > x).length
    if (left >= 3 && right >= 3) best = { end: k, x }
    const line = lines[k]
    if (!line || stop(k) || line.y - lines[k - 1]!.y > 3.5 * line.size) break
    const next = intersect(free, freeIntervals(line, zone)).filter(([a, b]) => b - a >= minGap(line))
    if (!next.length) break
    free = next
  }
  return best
}

type Interval = [number, number]

function freeIntervals(line: Line, zone: Interval): Interval[] {
  const out: Interval[] = []
  let cursor = zone[0]
  for (const seg of [...line.segments].sort((a, b) => a.x0 - b.x0)) {
    if (seg.x1 <= cursor) continue
    if (seg.x0 >= zone[1]) break
    if (seg.x0 > cursor) out.push([cursor, seg.x0])
    cursor = Math.max(cursor, seg.x1)
  }
  if (cursor < zone[1]) out.push([cursor, zone[1]])
  return out
}

function intersect(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = []
  for (const [a0, a1] of a) for (const [b0, b1] of b) if (Math.min(a1, b1) > Math.max(a0, b0)) out.push([Math.max(a0, b0), Math.min(a1, b1)])
  return out
}

function widest(intervals: Interval[]): Interval | undefined {
  return [...intervals].sort((p, q) => q[1] - q[0] - (p[1] - p[0]))[0]
}

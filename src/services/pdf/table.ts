import { decomposeLabel, headerTerm, isCodeKind, type ColumnKind } from './headers.js'
import { makeLine } from './layout.js'
import type { Line, Segment, Word } from './types.js'

export interface Column {
  kind: ColumnKind
  rank: number
  label: string
  /** Extent of the header label. */
  x0: number
  x1: number
  /** Region owned by the column: halfway to the neighbouring labels at first, then set by fitColumns. */
  left: number
  right: number
}

export interface TableHeader {
  columns: Column[]
  /** Baseline of the header's last line. */
  y: number
  size: number
}

export interface Row {
  /** The row's first line; continuation lines are folded in. */
  line: Line
  /** Cell text per column index. */
  cells: string[]
}

interface HeaderCell {
  label: string
  x0: number
  x1: number
  kind: ColumnKind | null
  rank: number
}

/** A header line names at least two known columns, mostly known ones, one of them a code or description. */
function headerCells(segments: Segment[]): HeaderCell[] | null {
  // Cheap rejection first: this runs for every line of every table.
  if (segments.filter((s) => !/\d/.test(s.text)).length < Math.min(2, segments.length)) return null
  const cells: HeaderCell[] = []
  for (const seg of segments) {
    const term = headerTerm(seg.text)
    if (term) {
      cells.push({ label: seg.text, x0: seg.x0, x1: seg.x1, kind: term.kind, rank: term.rank })
      continue
    }
    const parts = decomposeLabel(seg.words.map((w) => w.text))
    if (parts && parts.length > 1) {
      let i = 0
      for (const part of parts) {
        const words = seg.words.slice(i, i + part.count)
        i += part.count
        cells.push({
          label: words.map((w) => w.text).join(' '),
          x0: words[0]!.x0,
          x1: words[words.length - 1]!.x1,
          kind: part.term.kind,
          rank: part.term.rank,
        })
      }
      continue
    }
    cells.push({ label: seg.text, x0: seg.x0, x1: seg.x1, kind: null, rank: 0 })
  }
  const known = cells.filter((c) => c.kind)
  if (known.length < 2 || known.length < 0.6 * cells.length) return null
  if (!known.some((c) => c.kind === 'desc' || isCodeKind(c.kind!))) return null
  return cells
}

function toHeader(cells: HeaderCell[], line: Line): TableHeader {
  const sorted = [...cells].sort((a, b) => a.x0 - b.x0)
  const columns = sorted.map((c, i) => ({
    kind: c.kind ?? 'other',
    rank: c.rank,
    label: c.label,
    x0: c.x0,
    x1: c.x1,
    left: i === 0 ? -Infinity : (sorted[i - 1]!.x1 + c.x0) / 2,
    right: i === sorted.length - 1 ? Infinity : (c.x1 + sorted[i + 1]!.x0) / 2,
  }))
  return { columns, y: line.y, size: line.size }
}

/**
 * Is there a table header at lines[i]? Headers may wrap onto a second line ("Cód." over
 * "Fabricante"): the second line is merged in when it is close, wordy, and sits under the first.
 */
export function detectHeader(lines: Line[], i: number): { header: TableHeader; consumed: number } | null {
  const line = lines[i]
  if (!line) return null
  const single = headerCells(line.segments)
  const next = lines[i + 1]
  const sameSize = next && Math.abs(next.size - line.size) < 0.15 * line.size
  // Tried even when the first line alone is no header: "Designator  Quantity" over "Name".
  if (next && sameSize && next.y - line.y < 1.8 * line.size && next.y > line.y && !/\d/.test(next.text)) {
    const cells = headerCells(mergeHeaderLines(line, next))
    // Kept only if it recognises at least as many labels (a first body row without digits would not).
    if (cells) {
      const known = (cs: HeaderCell[] | null) => (cs ?? []).filter((c) => c.kind).length
      if (known(cells) >= known(single)) return { header: toHeader(cells, next), consumed: 2 }
    }
  }
  return single ? { header: toHeader(single, line), consumed: 1 } : null
}

/** Append each label of the second header line to the label above it. */
function mergeHeaderLines(top: Line, bottom: Line): Segment[] {
  const segments = top.segments.map((s) => ({ ...s, words: [...s.words] }))
  for (const seg of bottom.segments) {
    const target = segments.find((s) => overlap(s.x0, s.x1, seg.x0, seg.x1) > 0)
    if (target) {
      target.words.push(...seg.words)
      target.text = `${target.text} ${seg.text}`
      target.x0 = Math.min(target.x0, seg.x0)
      target.x1 = Math.max(target.x1, seg.x1)
    } else {
      segments.push({ ...seg })
    }
  }
  return segments.sort((a, b) => a.x0 - b.x0)
}

/**
 * When a header repeats its sequence of columns (two tables side by side: "PN Qty PN Qty"), return
 * the x that separates the two copies; otherwise null. A table with two code columns is not a repeat.
 */
export function headerSplit(header: TableHeader): number | null {
  const kinds = header.columns.map((c) => c.kind)
  for (let k = 2; k <= kinds.length - 2; k++) {
    const rest = kinds.slice(k)
    if (rest.every((kind, j) => kind === kinds[j]) && rest.some((kind) => kind === 'desc' || isCodeKind(kind))) {
      return (header.columns[k - 1]!.x1 + header.columns[k]!.x0) / 2
    }
  }
  return null
}

function overlap(a0: number, a1: number, b0: number, b1: number): number {
  return Math.max(0, Math.min(a1, b1) - Math.max(a0, b0))
}

function columnOf(header: TableHeader, x0: number, x1: number): number {
  let best = 0
  let bestOverlap = -Infinity
  header.columns.forEach((col, i) => {
    const o = x1 > x0 ? overlap(x0, x1, col.left, col.right) : x0 >= col.left && x0 < col.right ? 1 : 0
    if (o > bestOverlap) [best, bestOverlap] = [i, o]
  })
  return best
}

/**
 * Place the boundaries between columns where the body's cells leave a vertical gap. Why not halfway
 * between the labels: left-aligned text runs far past its label and right-aligned numbers start
 * well before theirs. Between two label centres we pick the x crossed by the fewest body cells,
 * preferring the gap nearest to the space between the two labels.
 */
export function fitColumns(header: TableHeader, body: Line[]): TableHeader {
  const cols = header.columns
  const segments = body.flatMap((l) => l.segments)
  if (!segments.length || cols.length < 2) return header
  const cuts: number[] = []
  let previous = -Infinity
  for (let i = 0; i + 1 < cols.length; i++) {
    const a = cols[i]!
    const b = cols[i + 1]!
    const lo = Math.max((a.x0 + a.x1) / 2, previous + 1)
    const hi = Math.max(lo, (b.x0 + b.x1) / 2)
    const target = (a.x1 + b.x0) / 2
    // Sweep the elementary intervals between cell edges: the crossing count is constant inside each.
    const relevant = segments.filter((seg) => seg.x1 > lo && seg.x0 < hi)
    const edges = [lo, hi, ...relevant.flatMap((seg) => [seg.x0, seg.x1]).filter((x) => x > lo && x < hi)].sort((p, q) => p - q)
    type Run = { from: number; to: number; count: number }
    const distance = (r: Run) => (target < r.from ? r.from - target : target > r.to ? target - r.to : 0)
    let best: Run | null = null
    let run: Run | null = null
    const pick = (r: Run, b: Run | null): Run =>
      !b || r.count < b.count || (r.count === b.count && (distance(r) < distance(b) || (distance(r) === distance(b) && r.to - r.from > b.to - b.from))) ? r : b
    for (let k = 0; k + 1 < edges.length; k++) {
      const from = edges[k]!
      const to = edges[k + 1]!
      if (to <= from) continue
      const mid = (from + to) / 2
      let count = 0
      for (const seg of relevant) if (seg.x0 < mid && seg.x1 > mid) count++
      if (run && run.count === count && run.to === from) run.to = to
      else {
        if (run) best = pick(run, best)
        run = { from, to, count }
      }
    }
    if (run) best = pick(run, best)
    const cut = best ? (best.from + best.to) / 2 : target
    cuts.push(cut)
    previous = cut
  }
  return {
    ...header,
    columns: cols.map((c, i) => ({ ...c, left: i === 0 ? -Infinity : cuts[i - 1]!, right: i === cols.length - 1 ? Infinity : cuts[i]! })),
  }
}

/**
 * A line of one or two phrases, one of which runs under two or more header labels, is prose
 * ("Observações: ...", a page footer), not a row: rows have a cell per column, and a cell that
 * overflows (a long description) still leaves the rest of its row in separate cells.
 */
function isProse(line: Line, header: TableHeader): boolean {
  if (line.segments.length > 2) return false
  return line.segments.some((seg) => header.columns.filter((c) => overlap(seg.x0, seg.x1, c.x0, c.x1) > 0.8 * (c.x1 - c.x0)).length >= 2)
}

/**
 * Distribute a line's text over the columns. A segment spanning boundaries (cells set too close
 * together, or a whole row written as one string) is cut at the word gaps nearest to them.
 */
export function lineCells(line: Line, header: TableHeader): string[] {
  const parts: Word[][] = header.columns.map(() => [])
  for (const seg of line.segments) {
    const first = columnOf(header, seg.x0, seg.x0)
    const cuts = header.columns
      .slice(first + 1)
      .map((c) => c.left)
      .filter((x) => x > seg.x0 + 0.2 * line.size && x < seg.x1 - 0.2 * line.size)
    if (!cuts.length) {
      parts[columnOf(header, seg.x0, seg.x1)]!.push(...seg.words)
      continue
    }
    const pieces = splitAtGaps(seg.words, cuts)
    if (pieces) pieces.forEach((words, i) => parts[first + i]!.push(...words))
    else for (const w of seg.words) parts[columnOf(header, w.x0, w.x1)]!.push(w)
  }
  return parts.map((words) => (words.length ? makeLine(words).segments.map((s) => s.text).join(' ') : ''))
}

/** Split words at the gap nearest to each cut, in order; null if there are not enough gaps. */
function splitAtGaps(words: Word[], cuts: number[]): Word[][] | null {
  const pieces: Word[][] = []
  let start = 0
  for (const cut of cuts) {
    let best = -1
    for (let g = start; g + 1 < words.length; g++) {
      const gap = (words[g]!.x1 + words[g + 1]!.x0) / 2
      if (best < 0 || Math.abs(gap - cut) < Math.abs((words[best]!.x1 + words[best + 1]!.x0) / 2 - cut)) best = g
    }
    if (best < 0) return null
    pieces.push(words.slice(start, best + 1))
    start = best + 1
  }
  pieces.push(words.slice(start))
  return pieces
}

const TABLE_END = /^(sub-?total|total|valor total|grand total|observa[cç][oõ]es|obs\b|notes?\b|remarks|condi[cç][oõ]es|terms\b|payment|pagamento|frete\b|freight|shipping|assinatura|signature|aprovado|approved)/i

/** Does this line look like a body row of the given table? (Used for tables continued from the previous page.) */
export function fitsTable(line: Line, header: TableHeader): boolean {
  if (line.segments.length < 2 || TABLE_END.test(line.text)) return false
  if (isProse(line, header)) return false
  const cells = lineCells(line, header)
  const anchor = header.columns.findIndex((c) => c.kind === 'qty')
  const code = header.columns.findIndex((c) => c.kind === 'desc' || isCodeKind(c.kind))
  if (code < 0 || !cells[code]) return false
  return anchor < 0 || /^\d[\d.,]*(\s*\S{0,4})?$/.test(cells[anchor] ?? '')
}

/**
 * Index of the first line after the table body that starts at `start`. The body ends at a new
 * header, a line that climbs back up the page (next column), a wide vertical gap, or a totals/notes
 * line or prose across several columns that is not followed by more rows.
 */
export function tableEnd(lines: Line[], start: number, header: TableHeader, isHeader: (k: number) => boolean): number {
  let prevY = header.y
  let k = start
  for (; k < lines.length; k++) {
    const line = lines[k]!
    if (line.y < prevY - 0.5 * line.size) break
    if (line.y - prevY > 3.5 * Math.max(line.size, header.size)) break
    if (isHeader(k)) break
    if (TABLE_END.test(line.text) || isProse(line, header)) {
      // A note under a row ("Obs.: fornecedor alternativo ...") is part of the table when rows follow.
      const next = lines[k + 1]
      const resumes = next && next.y > line.y && next.y - line.y <= 3.5 * line.size && fitsTable(next, header)
      if (!resumes) break
    }
    prevY = line.y
  }
  return k
}

/**
 * Fold body lines into rows. A line opens a new row when it has something in an "anchor" column
 * (item number or quantity; failing those, the code column; failing that, any column but the
 * description). Anything else is the wrapped continuation of the row above.
 */
export function buildRows(lines: Line[], header: TableHeader): Row[] {
  const cols = header.columns
  const body = lines.filter((line) => !/^[-=_.\s]+$/.test(line.text)) // rules under a text-mode header
  const lineCellsOf = body.map((line) => lineCells(line, header))
  // A column left empty in every line (its numbers drawn under the neighbouring label) anchors nothing.
  const filled = (i: number) => lineCellsOf.some((cells) => cells[i])
  const pick = (kinds: ColumnKind[]) => cols.flatMap((c, i) => (kinds.includes(c.kind) && filled(i) ? [i] : []))
  let anchors = pick(['item', 'qty'])
  if (!anchors.length) anchors = pick(['pn', 'value', 'order', 'internal'])
  if (!anchors.length) anchors = pick(['other'])

  const rows: Row[] = []
  for (const [k, line] of body.entries()) {
    const cells = lineCellsOf[k]!
    const current = rows[rows.length - 1]
    const opens = !current || !anchors.length || anchors.some((i) => cells[i])
    if (opens) {
      rows.push({ line, cells })
      continue
    }
    cells.forEach((text, i) => {
      if (!text) return
      const prev = current.cells[i] ?? ''
      current.cells[i] = prev ? joinContinuation(prev, text, cols[i]!.kind) : text
    })
  }
  return rows
}

/** A code broken after "-" or "/" (or leaving a tiny tail) continues without a space. */
function joinContinuation(prev: string, next: string, kind: ColumnKind): string {
  if (isCodeKind(kind) && !/\s/.test(next) && (/[-/.]$/.test(prev) || next.length <= 3)) return prev + next
  return `${prev} ${next}`
}

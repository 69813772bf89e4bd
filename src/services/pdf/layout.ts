import type { Line, Segment, TextItem, Word } from './types.js'

/** A text run as pdfjs reports it, with its transform already multiplied by the page viewport (y down). */
export interface RawItem {
  str: string
  /** [a, b, c, d, e, f]: (a, b) is the writing direction scaled by font size, (e, f) the origin. */
  transform: number[]
  width: number
}

/**
 * Rotate a page's runs so that its dominant writing direction becomes left-to-right.
 * Why: a landscape table may be drawn sideways on a portrait page (or the page carries /Rotate);
 * everything downstream assumes horizontal lines. Runs in other directions (stamps, vertical
 * margin notes) are dropped: they are never part of an item table.
 */
export function normalizeItems(raw: RawItem[]): TextItem[] {
  const weight = new Map<number, number>()
  const quarter = (t: number[]) => ((Math.round(Math.atan2(t[1] ?? 0, t[0] ?? 0) / (Math.PI / 2)) % 4) + 4) % 4
  for (const item of raw) {
    if (!item.str.trim()) continue
    const q = quarter(item.transform)
    weight.set(q, (weight.get(q) ?? 0) + item.str.length)
  }
  let dominant = 0
  let best = -1
  for (const [q, w] of weight) if (w > best) [dominant, best] = [q, w]

  const angle = (dominant * Math.PI) / 2
  const cos = Math.round(Math.cos(angle))
  const sin = Math.round(Math.sin(angle))
  const items: TextItem[] = []
  for (const item of raw) {
    if (!item.str.trim() || quarter(item.transform) !== dominant) continue
    const [, , c = 0, d = 0, e = 0, f = 0] = item.transform
    items.push({
      str: item.str,
      // rotate by -angle so the writing direction maps onto +x
      x: e * cos + f * sin,
      y: -e * sin + f * cos,
      width: Math.abs(item.width),
      size: Math.hypot(c, d) || 1,
    })
  }
  return items
}

/** Split runs into words, estimating each word's extent from its share of the run's characters. */
export function itemWords(item: TextItem): Word[] {
  const words: Word[] = []
  const perChar = item.str.length ? item.width / item.str.length : 0
  for (const m of item.str.matchAll(/\S+/g)) {
    const start = m.index
    words.push({
      text: m[0],
      x0: item.x + start * perChar,
      x1: item.x + (start + m[0].length) * perChar,
      y: item.y,
      size: item.size,
    })
  }
  return words
}

/** A gap wider than this (in font sizes) separates cells; ordinary word spaces are ~0.25-0.6. */
const CELL_GAP = 0.8

export function makeLine(words: Word[]): Line {
  const sorted = [...words].sort((a, b) => a.x0 - b.x0)
  const size = median(sorted.map((w) => w.size))
  const segments: Segment[] = []
  let current: Word[] = []
  for (const word of sorted) {
    const last = current[current.length - 1]
    if (last && word.x0 - last.x1 > CELL_GAP * Math.max(size, word.size)) {
      segments.push(toSegment(current))
      current = []
    }
    current.push(word)
  }
  if (current.length) segments.push(toSegment(current))
  return {
    y: median(sorted.map((w) => w.y)),
    size,
    x0: sorted[0]?.x0 ?? 0,
    x1: Math.max(...sorted.map((w) => w.x1)),
    words: sorted,
    segments,
    text: segments.map((s) => s.text).join(' '),
  }
}

function toSegment(words: Word[]): Segment {
  // Adjacent runs without a gap (e.g. "BC847" + "BLT1G" drawn separately) form one word.
  let text = ''
  let prev: Word | undefined
  for (const w of words) {
    if (prev) text += w.x0 - prev.x1 > 0.15 * w.size ? ' ' : ''
    text += w.text
    prev = w
  }
  return { text, x0: words[0]!.x0, x1: Math.max(...words.map((w) => w.x1)), words }
}

/**
 * Group words into lines by baseline. Why a tolerance and not equality: generators round
 * coordinates differently per run, and table cells are sometimes nudged by a fraction of a point.
 */
export function buildLines(items: TextItem[]): Line[] {
  const words = items.flatMap(itemWords).sort((a, b) => a.y - b.y || a.x0 - b.x0)
  const lines: Line[] = []
  let group: Word[] = []
  let groupY = 0
  for (const word of words) {
    if (group.length && Math.abs(word.y - groupY) > 0.5 * Math.min(word.size, group[0]!.size)) {
      lines.push(makeLine(group))
      group = []
    }
    if (!group.length) groupY = word.y
    group.push(word)
  }
  if (group.length) lines.push(makeLine(group))
  return lines
}

/** The part of a line left (side 'left') or right of x, or null when that side is empty. */
export function sideOf(line: Line, x: number, side: 'left' | 'right'): Line | null {
  const words = line.words.filter((w) => ((w.x0 + w.x1) / 2 < x) === (side === 'left'))
  return words.length ? makeLine(words) : null
}

export function median(values: number[]): number {
  if (!values.length) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** One part number found in a purchase order. */
export interface ExtractedPart {
  partnumber: string
  /** 1-based page of the first occurrence. */
  page: number
  /** 1-based line on that page, in reading order (see layout.ts for what a line is). */
  line: number
  description?: string
  quantity?: number
}

export interface ExtractionResult {
  pages: number
  part_numbers: ExtractedPart[]
}

/** Per-document budgets: a document over one is refused with a code and a message naming it. */
export interface ExtractOptions {
  /** Reject documents with more pages than this (default 300; too_many_pages). */
  maxPages?: number
  /** Reject documents with more text runs than this, over all pages (default 500,000; too_complex). */
  maxTextItems?: number
  /** Reject documents with more text-showing operators than this, counted before reading (default 500,000; too_complex). */
  maxTextOperators?: number
  /** Reject documents whose FlateDecode streams inflate to more than this, all together, counted before reading (default 256 MiB; too_large_decompressed). */
  maxDecompressedBytes?: number
}

/** A run of text from the PDF, already rotated so that it reads left to right; y grows downwards. */
export interface TextItem {
  str: string
  /** Left end of the baseline. */
  x: number
  /** Baseline. */
  y: number
  width: number
  /** Font size in page units. */
  size: number
}

/** A whitespace-free piece of an item, with an estimated horizontal extent. */
export interface Word {
  text: string
  x0: number
  x1: number
  y: number
  size: number
}

/** Words of one line separated by small gaps: one table cell, or one phrase of free text. */
export interface Segment {
  text: string
  x0: number
  x1: number
  words: Word[]
}

/** Words sharing a baseline (or, in a two-column region, one column's share of them). */
export interface Line {
  y: number
  size: number
  x0: number
  x1: number
  words: Word[]
  segments: Segment[]
  text: string
}

import { createInflate } from 'node:zlib'

export interface ContentLimits {
  maxDecompressedBytes: number
  maxTextOperators: number
}

export interface ContentTotals {
  /** What the file's zlib (FlateDecode) streams inflate to, all together. */
  decompressedBytes: number
  /** Text-showing operators (Tj, TJ, ' and ") standing as words in the file and in what its streams inflate to. */
  textOperators: number
}

/**
 * Measures a PDF's content before pdfjs sees it, so that a flate bomb or a flood of text operators
 * is refused for what it is instead of exhausting the reader. Counting stops as soon as one total
 * passes its limit.
 *
 * Every `stream` keyword of the file counts, whatever its dictionary says: its data is inflated
 * when it starts with a zlib header (pdfjs inflates nothing else), from there to the end of the
 * file (zlib stops at its own end marker, so a wrong /Length hides nothing), and the output is
 * inflated again while it is zlib data too (a chain of FlateDecode filters). Damaged data counts up
 * to the damage, as far as pdfjs gets. Streamed: memory stays small whatever the sizes.
 * Not counted: streams behind other filters (LZW, RunLength, ASCII85 first) and operators repeated
 * through form XObjects; the text-item, memory and time budgets bound those.
 */
export async function scanContent(pdf: Uint8Array, limits: ContentLimits): Promise<ContentTotals> {
  const bytes = Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength)
  const totals: ContentTotals = { decompressedBytes: 0, textOperators: textOperators(bytes) }
  const within = () => totals.decompressedBytes <= limits.maxDecompressedBytes && totals.textOperators <= limits.maxTextOperators
  const take = (chunk: Buffer) => {
    totals.decompressedBytes += chunk.length
    totals.textOperators += textOperators(chunk)
    return within()
  }
  for (const start of streamStarts(bytes)) {
    const data = bytes.subarray(start)
    for (let depth = 1; within() && isZlib(data); depth++) {
      if (!(await inflateTimes(data, depth, take))) break
    }
    if (!within()) break
  }
  return totals
}

// PDF white space and delimiters: what may stand next to a keyword or an operator.
const SEPARATORS = new Set(Buffer.from('\0\t\n\f\r ()<>[]{}/%', 'latin1'))
const STREAM = Buffer.from('stream', 'latin1')
const TEXT_OPERATORS = ['Tj', 'TJ', "'", '"'].map((op) => Buffer.from(op, 'latin1'))
const CR = 0x0d
const LF = 0x0a

/** Whether `length` bytes at `at` are a word of their own (not part of a longer one, such as endstream). */
function isWord(bytes: Buffer, at: number, length: number): boolean {
  const before = bytes[at - 1]
  const after = bytes[at + length]
  return (before === undefined || SEPARATORS.has(before)) && (after === undefined || SEPARATORS.has(after))
}

function* occurrences(bytes: Buffer, word: Buffer): Generator<number> {
  for (let at = bytes.indexOf(word); at >= 0; at = bytes.indexOf(word, at + word.length)) {
    if (isWord(bytes, at, word.length)) yield at
  }
}

function textOperators(bytes: Buffer): number {
  let count = 0
  for (const op of TEXT_OPERATORS) for (const _ of occurrences(bytes, op)) count++
  return count
}

/** Where the data of each `stream` keyword starts: on the next line, as pdfjs reads it. */
function* streamStarts(bytes: Buffer): Generator<number> {
  for (const at of occurrences(bytes, STREAM)) {
    let eol = at + STREAM.length
    while (eol < bytes.length && bytes[eol] !== CR && bytes[eol] !== LF) eol++
    yield bytes[eol] === CR && bytes[eol + 1] === LF ? eol + 2 : eol + 1
  }
}

/** The two-byte zlib header that pdfjs' FlateDecode requires (deflate method, valid check bits). */
function isZlib(data: Uint8Array): boolean {
  return data.length >= 2 && (data[0]! & 0x0f) === 8 && ((data[0]! << 8) | data[1]!) % 31 === 0
}

// Output chunk of each inflater: at zlib's default of 16 KiB, the per-chunk cost dominates a bomb's count.
const CHUNK_BYTES = 256 * 1024

/**
 * Inflates `data` `depth` times over, handing each output chunk to `take` until it returns false;
 * resolves whether the output is zlib data again.
 */
function inflateTimes(data: Buffer, depth: number, take: (chunk: Buffer) => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    const stages = Array.from({ length: depth }, () => createInflate({ chunkSize: CHUNK_BYTES }))
    let head: Buffer | undefined
    const finish = () => {
      for (const stage of stages) stage.destroy()
      resolve(head !== undefined && isZlib(head))
    }
    const last = stages.reduce((from, to) => from.pipe(to))
    last.on('data', (chunk: Buffer) => {
      head ??= chunk
      if (!take(chunk)) finish()
    })
    last.on('end', finish)
    // Damaged or truncated data: what was inflated before the damage counts.
    for (const stage of stages) stage.on('error', finish)
    stages[0]!.end(data)
  })
}

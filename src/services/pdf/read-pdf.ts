import { createRequire } from 'node:module'
import path from 'node:path'
import { getDocument, Util } from 'pdfjs-dist/legacy/build/pdf.mjs'
import type { PDFPageProxy, TextContent } from 'pdfjs-dist/types/src/display/api.js'
import { PdfRejectedError } from './errors.js'
import { scanContent, type ContentLimits } from './content-scan.js'
import { normalizeItems, type RawItem } from './layout.js'
import type { ExtractOptions, TextItem } from './types.js'

export const DEFAULT_MAX_PAGES = 300
export const DEFAULT_MAX_TEXT_ITEMS = 500_000
export const DEFAULT_MAX_TEXT_OPERATORS = 500_000
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 256 * 1_048_576

const pdfjsRoot = path.dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json'))
// pdfjs wants directory URLs with a trailing separator; in Node a plain path works.
const STANDARD_FONTS = path.join(pdfjsRoot, 'standard_fonts') + '/'
const CMAPS = path.join(pdfjsRoot, 'cmaps') + '/'

/** Check what can be checked without parsing: emptiness, the %PDF- magic, a complete tail. */
export function checkEnvelope(data: Uint8Array): void {
  if (data.byteLength === 0) throw new PdfRejectedError('empty')
  // The header may be preceded by junk (Acrobat tolerates 1 KiB); file names are not trusted.
  if (indexOf(data, '%PDF-', 0, 1024) < 0) throw new PdfRejectedError('not_pdf')
  // A file cut short in transit loses its trailer; pdfjs would otherwise salvage a few pages.
  if (indexOf(data, '%%EOF', Math.max(0, data.byteLength - 1024), data.byteLength) < 0) {
    throw new PdfRejectedError('corrupt', 'The PDF is truncated (no end-of-file marker).')
  }
}

function indexOf(data: Uint8Array, needle: string, from: number, to: number): number {
  const bytes = Buffer.from(needle, 'latin1')
  const hay = Buffer.from(data.buffer, data.byteOffset + from, Math.max(0, Math.min(to, data.byteLength) - from))
  const i = hay.indexOf(bytes)
  return i < 0 ? -1 : i + from
}

/** Refuse, before pdfjs parses anything, what unpacks to too much or shows too much text (see content-scan.ts). */
async function checkContent(data: Uint8Array, limits: ContentLimits): Promise<void> {
  const { decompressedBytes, textOperators } = await scanContent(data, limits)
  if (decompressedBytes > limits.maxDecompressedBytes) {
    const mb = megabytes(limits.maxDecompressedBytes)
    throw new PdfRejectedError('too_large_decompressed', `The PDF's content unpacks to more than ${mb} MB; at most ${mb} MB are accepted.`)
  }
  if (textOperators > limits.maxTextOperators) {
    const max = limits.maxTextOperators
    throw new PdfRejectedError('too_complex', `The PDF has more than ${max} text operators; at most ${max} are accepted.`)
  }
}

/** Bytes as the MB of messages (MiB, as the upload limit's message counts them). */
function megabytes(bytes: number): number {
  return Number((bytes / 1_048_576).toFixed(1))
}

/**
 * Open a PDF and return each page's text runs, oriented for reading. Rejections carry a stable code.
 * Ownership of `data` passes to pdfjs, which detaches its buffer when it spans a whole ArrayBuffer.
 */
export async function readPdfText(data: Uint8Array, budgets: ExtractOptions = {}): Promise<TextItem[][]> {
  const {
    maxPages = DEFAULT_MAX_PAGES,
    maxTextItems = DEFAULT_MAX_TEXT_ITEMS,
    maxTextOperators = DEFAULT_MAX_TEXT_OPERATORS,
    maxDecompressedBytes = DEFAULT_MAX_DECOMPRESSED_BYTES,
  } = budgets
  checkEnvelope(data)
  await checkContent(data, { maxDecompressedBytes, maxTextOperators })
  const task = getDocument({
    data: data instanceof Buffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data,
    standardFontDataUrl: STANDARD_FONTS,
    cMapUrl: CMAPS,
    cMapPacked: true,
    verbosity: 0,
    isEvalSupported: false,
    disableFontFace: true,
    useSystemFonts: false,
  })
  try {
    let doc
    try {
      doc = await task.promise
    } catch (err) {
      throw rejection(err)
    }
    // A PDF encrypted with an owner password only opens with the empty user password: pdfjs has
    // decrypted it by now, and its permission flags (print, copy...) do not concern reading text.
    // One that needs a user password fails above with a PasswordException.
    if (doc.numPages < 1) throw new PdfRejectedError('corrupt', 'The PDF has no pages.')
    if (doc.numPages > maxPages) {
      throw new PdfRejectedError('too_many_pages', `The PDF has ${doc.numPages} pages; at most ${maxPages} are accepted.`)
    }
    const pages: TextItem[][] = []
    const textItems = { max: maxTextItems, seen: 0 }
    for (let n = 1; n <= doc.numPages; n++) {
      try {
        const page = await doc.getPage(n)
        pages.push(normalizeItems(await textRuns(page, textItems)))
        page.cleanup()
      } catch (err) {
        throw rejection(err)
      }
    }
    return pages
  } finally {
    await task.destroy()
  }
}

/**
 * A page's text runs, oriented for reading. Streamed, so that a page of millions of runs is refused
 * once the document's count passes its budget, before pdfjs has collected them all.
 */
async function textRuns(page: PDFPageProxy, count: { max: number; seen: number }): Promise<RawItem[]> {
  const viewport = page.getViewport({ scale: 1 })
  const raw: RawItem[] = []
  const reader = (page.streamTextContent() as ReadableStream<TextContent>).getReader()
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    count.seen += chunk.value.items.length
    if (count.seen > count.max) {
      const refusal = new PdfRejectedError('too_complex', `The PDF has more than ${count.max} text items; at most ${count.max} are accepted.`)
      await reader.cancel(refusal) // with an Error: pdfjs mishandles any other reason (and later throws an uncaught error)
      throw refusal
    }
    for (const item of chunk.value.items) {
      if ('str' in item && item.str.trim()) {
        raw.push({ str: item.str, width: item.width, transform: Util.transform(viewport.transform, item.transform) })
      }
    }
  }
  return raw
}

/**
 * Load pdfjs's parser and run it once on a one-line document. Why: the first extraction in a fresh
 * process otherwise pays for loading ~2 MB of parser code and cold JIT, often more than a second.
 */
export async function warmUp(): Promise<void> {
  const globals = globalThis as { pdfjsWorker?: unknown }
  if (!globals.pdfjsWorker) {
    // Handing pdfjs its parser up front replaces its own lazy import of the same module.
    const specifier = 'pdfjs-dist/legacy/build/pdf.worker.mjs'
    globals.pdfjsWorker = await import(specifier)
  }
  await readPdfText(minimalPdf())
}

/** A valid single-page PDF showing "PN: LM358N" in Helvetica. */
export function minimalPdf(): Uint8Array {
  const text = 'BT /F1 9 Tf 10 50 Td (PN: LM358N) Tj ET'
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>',
    `<< /Length ${text.length} >>\nstream\n${text}\nendstream`,
  ]
  let body = '%PDF-1.4\n'
  const offsets: number[] = []
  objects.forEach((object, i) => {
    offsets.push(body.length)
    body += `${i + 1} 0 obj\n${object}\nendobj\n`
  })
  const xref = body.length
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`
  for (const offset of offsets) body += `${String(offset).padStart(10, '0')} 00000 n \n`
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
  return new Uint8Array(Buffer.from(body, 'latin1'))
}

function rejection(err: unknown): PdfRejectedError {
  if (err instanceof PdfRejectedError) return err
  const name = (err as { name?: string } | null)?.name
  if (name === 'PasswordException') return new PdfRejectedError('encrypted', undefined, { cause: err })
  return new PdfRejectedError('corrupt', undefined, { cause: err })
}

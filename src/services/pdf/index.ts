/**
 * Part numbers from purchase-order PDFs.
 *
 *   const pool = new ExtractionPool()            // once, at startup; pool.close() on shutdown
 *   const { pages, part_numbers } = await pool.extract(uploadBuffer)
 *
 * `line` in the output is the 1-based number of the text line on its page in reading order: every
 * line with text counts (titles, table headers, wrapped continuations), and in a two-column region
 * the left column's lines come before the right column's. A table row reports its first line.
 * A part listed twice is reported once, at its first occurrence, with the quantities summed.
 *
 * Errors: PdfRejectedError (code not_pdf 415, empty 400, too_many_pages 413, too_large_decompressed
 * 413, too_complex 422, encrypted 422, corrupt 422) for unusable uploads and uploads over a
 * per-document budget (pages, unpacked bytes, text operators, text items, time, memory; the
 * message names the budget); ExtractionPoolError (queue_full 503, closed 503, worker_failed 500)
 * when the pool cannot run the job. Both carry `statusCode`, which Fastify's default error handler
 * turns into a JSON reply with `code` and `message`.
 */
export { extractFromPages, extractPartNumbers } from './extract.js'
export { isPdfRejectCode, PdfRejectedError, type PdfRejectCode } from './errors.js'
export {
  createExtractionPool,
  ExtractionPool,
  ExtractionPoolError,
  type ExtractionPoolErrorCode,
  type ExtractionPoolOptions,
  type ExtractJobOptions,
} from './extraction-pool.js'
export { DEFAULT_MAX_PAGES } from './read-pdf.js'
export type { ExtractedPart, ExtractionResult, ExtractOptions } from './types.js'

export type PdfRejectCode = 'not_pdf' | 'empty' | 'too_many_pages' | 'too_large_decompressed' | 'too_complex' | 'encrypted' | 'corrupt'

// statusCode is picked up by Fastify's default error handler, so a thrown error becomes a 4xx JSON reply.
const STATUS: Record<PdfRejectCode, number> = {
  not_pdf: 415,
  empty: 400,
  too_many_pages: 413,
  too_large_decompressed: 413,
  too_complex: 422,
  encrypted: 422,
  corrupt: 422,
}

const MESSAGES: Record<PdfRejectCode, string> = {
  not_pdf: 'The file is not a PDF.',
  empty: 'The file is empty.',
  too_many_pages: 'The PDF has too many pages.',
  too_large_decompressed: 'The PDF unpacks to too much content.',
  too_complex: 'The PDF is too complex to read within the limits of this service.',
  encrypted: 'The PDF needs a password to open; please upload a copy without an open password.',
  corrupt: 'The PDF is damaged or truncated and cannot be read.',
}

/** The uploaded document cannot be processed; `code` is stable and safe to show to clients. */
export class PdfRejectedError extends Error {
  override readonly name = 'PdfRejectedError'
  readonly code: PdfRejectCode
  readonly statusCode: number

  constructor(code: PdfRejectCode, message: string = MESSAGES[code], options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.statusCode = STATUS[code]
  }
}

export function isPdfRejectCode(value: unknown): value is PdfRejectCode {
  return typeof value === 'string' && value in STATUS
}

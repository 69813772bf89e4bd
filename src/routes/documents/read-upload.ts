import type { FastifyRequest } from 'fastify'
import { basename } from 'node:path'
import { HttpError } from '../../http-errors.js'

export interface Upload {
  filename: string
  bytes: Buffer
}

const UPLOAD_FIELDS = new Set(['file', 'pedido']) // `pedido`: the field name of the older front end
// Room for what surrounds the file in a form: delimiters, part headers and the few small fields allowed.
const MULTIPART_ENVELOPE_BYTES = 64 * 1024

// @fastify/multipart's refusals of a form that goes past its limits (src/plugins/app/documents.ts).
const LIMIT_ERRORS: Record<string, () => HttpError> = {
  FST_FILES_LIMIT: () => new HttpError(400, 'too_many_files', 'Send one PDF per upload'),
  FST_FIELDS_LIMIT: () => new HttpError(413, 'too_many_parts', 'The form has more fields than an upload needs'),
  FST_PARTS_LIMIT: () => new HttpError(413, 'too_many_parts', 'The form has more parts than an upload needs'),
}

const tooLarge = (maxBytes: number) => new HttpError(413, 'document_too_large', `The file is larger than the limit of ${maxBytes} bytes`)
const fileMissing = (message = 'No file in the upload; send it in the field "file"') => new HttpError(400, 'file_missing', message)

/** A file name fit to store and show: no path, no control characters. */
function cleanFilename(name: string | undefined): string {
  const cleaned = basename(name ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 255)
  return cleaned || 'document.pdf'
}

/**
 * The one PDF of a multipart/form-data upload, read whole only when it is within `maxBytes`. Every
 * form that is not one well-formed file of at most that size (and a few small fields) is refused
 * with a 4xx; anything else that goes wrong while reading is the form's bytes, so a 400 too.
 */
export async function readUpload(request: FastifyRequest, maxBytes: number): Promise<Upload> {
  if (!request.isMultipart()) throw new HttpError(415, 'unsupported_media_type', 'Send the PDF as multipart/form-data in the field "file"')
  // Announced too large: refused before a byte of it is read.
  if (Number(request.headers['content-length']) > maxBytes + MULTIPART_ENVELOPE_BYTES) throw tooLarge(maxBytes)
  let upload: Upload | undefined
  try {
    // The whole form, so that a second file, a bad field or a broken end is refused too.
    const parts = request.parts()
    for await (const part of parts) {
      if (part.type === 'field') {
        if (part.valueTruncated) throw new HttpError(413, 'field_too_large', `The field "${part.fieldname}" is larger than an upload needs`)
        continue
      }
      if (!UPLOAD_FIELDS.has(part.fieldname)) throw fileMissing(`Unexpected field "${part.fieldname}"; send the PDF in the field "file"`)
      const bytes = await part.toBuffer().catch((err) => whyCutOff(parts, err))
      // The stream is cut off at the limit. toBuffer refuses a file whose cut it reads, but an excess
      // that arrives after the last chunk it read only marks the stream truncated.
      if (part.file.truncated) throw tooLarge(maxBytes)
      upload = { filename: cleanFilename(part.filename), bytes }
    }
  } catch (err) {
    throw uploadError(request, err, maxBytes)
  } finally {
    // Whatever is left of the body (after a refusal, or an epilogue) is read and dropped, so that
    // the connection can carry the next request.
    request.raw.unpipe()
    request.raw.resume()
  }
  if (!upload) throw fileMissing()
  return upload
}

/**
 * A file closed under its reader was stopped by the parser, for a reason the parts give next (a
 * limit reached by a later part, say); with no such reason, the form ended too early.
 */
async function whyCutOff(parts: AsyncIterator<unknown>, err: unknown): Promise<never> {
  if ((err as { code?: string }).code === 'ERR_STREAM_PREMATURE_CLOSE') await parts.next()
  throw err
}

function uploadError(request: FastifyRequest, err: unknown, maxBytes: number): HttpError {
  if (err instanceof HttpError) return err
  const code = (err as { code?: string }).code ?? ''
  if (code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge(maxBytes)
  const limitError = LIMIT_ERRORS[code]
  if (limitError) return limitError()
  request.log.info({ err }, 'malformed upload')
  return new HttpError(400, 'malformed_upload', 'The upload is not a well-formed multipart/form-data body with the PDF in the field "file"')
}

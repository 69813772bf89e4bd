import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { createHash } from 'node:crypto'
import { basename } from 'node:path'
import { errorResponses, IdParams, Nullable, PageQuery, Timestamp, Uuid } from '../../schemas/common.js'
import { Job } from '../../schemas/jobs.js'
import { getDocument, insertDocument, listDocuments } from '../../services/documents/documents-store.js'
import { documentBatchItems } from '../../services/documents/document-batch.js'
import { getJobView } from '../../services/jobs/jobs-store.js'
import { ExtractionPoolError } from '../../services/pdf/extraction-pool.js'
import { PdfRejectedError } from '../../services/pdf/errors.js'
import type { ExtractionResult } from '../../services/pdf/types.js'
import { HttpError, notFound } from '../../http-errors.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { canSee, withEventsUrl } from '../jobs/job-response.js'

const ExtractedPart = Type.Object({
  partnumber: Type.String(),
  page: Type.Integer(),
  line: Type.Integer(),
  description: Type.Optional(Type.String()),
  quantity: Type.Optional(Type.Number()),
})
const DocumentSummary = {
  document_id: Uuid,
  filename: Type.String(),
  size_bytes: Type.Integer(),
  pages: Type.Integer(),
  total: Type.Integer(),
  owner_id: Uuid,
  created_at: Timestamp,
}
const DocumentResponse = Type.Object({ ...DocumentSummary, part_numbers: Type.Array(ExtractedPart) })
const UPLOAD_FIELDS = new Set(['file', 'pedido']) // `pedido`: the field name of the older front end

/** A file name fit to store and show: no path, no control characters. */
function cleanFilename(name: string | undefined): string {
  const cleaned = basename(name ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 255)
  return cleaned || 'document.pdf'
}

const documents: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  const { documents: limits } = app.config
  app.addHook('onRequest', app.authenticate)

  async function readUpload(request: Parameters<typeof app.authenticate>[0]): Promise<{ filename: string; bytes: Buffer }> {
    if (!request.isMultipart()) throw new HttpError(415, 'unsupported_media_type', 'Send the PDF as multipart/form-data in the field "file"')
    const file = await request.file()
    if (!file) throw new HttpError(400, 'file_missing', 'No file in the upload; send it in the field "file"')
    if (!UPLOAD_FIELDS.has(file.fieldname)) {
      file.file.resume()
      throw new HttpError(400, 'file_missing', `Unexpected field "${file.fieldname}"; send the PDF in the field "file"`)
    }
    try {
      // The stream is cut off at the limit: a larger upload is refused without being held whole.
      return { filename: cleanFilename(file.filename), bytes: await file.toBuffer() }
    } catch (err) {
      if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') {
        throw new HttpError(413, 'document_too_large', `The file is larger than the limit of ${Math.floor(limits.maxBytes / 1_048_576)} MB`)
      }
      throw err
    }
  }

  async function extract(bytes: Buffer): Promise<ExtractionResult> {
    try {
      return await app.pdfExtraction.extract(bytes, { maxPages: limits.maxPages })
    } catch (err) {
      if (err instanceof PdfRejectedError) {
        throw new HttpError(err.statusCode, err.code, err.message)
      }
      if (err instanceof ExtractionPoolError) throw new HttpError(503, `extraction_${err.code}`, 'The document could not be read right now; try again shortly', { 'retry-after': '5' })
      throw err
    }
  }

  app.post('/documents', {
    schema: {
      tags: ['documents'],
      summary: 'Upload a purchase-order PDF and extract its part numbers',
      description: 'multipart/form-data with the PDF in the field `file` (or `pedido`). With `?classify=true` the part numbers are also classified in one batch job, returned as `job`.',
      consumes: ['multipart/form-data'],
      querystring: Type.Object({ classify: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: {
        201: Type.Object({ ...DocumentResponse.properties, job: Type.Optional(Nullable(Type.Ref(Job))) }),
        ...errorResponses(400, 401, 413, 415, 422, 429, 502, 503),
      },
    },
  }, async (request, reply) => {
    const { filename, bytes } = await readUpload(request)
    const sizeBytes = bytes.length
    const sha256 = createHash('sha256').update(bytes).digest()
    const extracted = await extract(bytes)
    const doc = await insertDocument(pool, {
      ownerId: request.identity.id, filename, sizeBytes, sha256,
      pages: extracted.pages, partNumbers: extracted.part_numbers, content: limits.storeFiles ? bytes : null,
    })
    request.log.info({ documentId: doc.id, pages: doc.pages, total: doc.total }, 'document extracted')
    let job: ReturnType<typeof withEventsUrl> | null | undefined
    if (request.query.classify) {
      const items = documentBatchItems(doc)
      const record = items.length ? await app.classifications.startBatch(request.identity, { partnumbers: items, documentId: doc.id }) : undefined
      const view = record && (await getJobView(pool, record.id))
      job = view ? withEventsUrl(app, request.identity, view) : null
    }
    return reply.code(201).header('location', `/documents/${doc.id}`).send({ ...doc, document_id: doc.id, job })
  })

  app.get('/documents', {
    schema: {
      tags: ['documents'], summary: 'Your uploaded documents (everyone\'s for admins), newest first',
      querystring: Type.Object(PageQuery, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(Type.Object(DocumentSummary)), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401) },
    },
  }, async (request) => {
    const limit = request.query.limit ?? 50
    const rows = await listDocuments(pool, {
      ownerId: request.identity.role === 'ADMIN' ? undefined : request.identity.id,
      before: request.query.cursor ? decodeCursor(request.query.cursor) : undefined,
      limit,
    })
    const last = rows.at(-1)
    return { items: rows.map((d) => ({ ...d, document_id: d.id })), next_cursor: rows.length === limit && last ? encodeCursor(last.created_at, last.id) : null }
  })

  app.get('/documents/:id', {
    schema: { tags: ['documents'], summary: 'One document with its extracted part numbers', params: IdParams, response: { 200: DocumentResponse, ...errorResponses(400, 401, 404) } },
  }, async (request) => {
    const doc = await getDocument(pool, request.params.id)
    if (!doc || !canSee(request, doc.owner_id)) throw notFound('document')
    return { ...doc, document_id: doc.id }
  })
}

export default documents

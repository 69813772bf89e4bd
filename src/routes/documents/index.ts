import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import { errorResponses, IdParams, Nullable, PageQuery, Timestamp, Uuid } from '../../schemas/common.js'
import { Job } from '../../schemas/jobs.js'
import { getDocument, insertDocument, listDocuments } from '../../services/documents/documents-store.js'
import { documentBatchItems } from '../../services/documents/document-batch.js'
import { getJobView } from '../../services/jobs/jobs-store.js'
import { ExtractionPoolError } from '../../services/pdf/extraction-pool.js'
import { PdfRejectedError } from '../../services/pdf/errors.js'
import type { ExtractionResult } from '../../services/pdf/types.js'
import { UploadSlots } from '../../services/documents/upload-slots.js'
import { HttpError, notFound, tooManyRequests } from '../../http-errors.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { canSee, withEventsUrl } from '../jobs/job-response.js'
import { readUpload } from './read-upload.js'

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
// What a user whose uploads are all taken should wait: about one extraction.
const UPLOAD_RETRY_AFTER_SECONDS = 5

const documents: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  const { documents: limits } = app.config
  const uploadSlots = new UploadSlots(limits.maxConcurrentPerUser)
  app.addHook('onRequest', app.authenticate)

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

  /** Reads the upload and extracts its part numbers, in one of the user's upload slots. */
  async function receive(request: FastifyRequest) {
    const release = uploadSlots.take(request.identity.id)
    if (!release) {
      throw tooManyRequests(UPLOAD_RETRY_AFTER_SECONDS, `You already have ${uploadSlots.perUser} uploads in progress; wait for one to finish`, 'too_many_uploads')
    }
    try {
      const { filename, bytes } = await readUpload(request, limits.maxBytes)
      // Size and digest first: the extraction may take the bytes away (see extract).
      const sizeBytes = bytes.length
      const sha256 = createHash('sha256').update(bytes).digest()
      return { filename, bytes, sizeBytes, sha256, extracted: await extract(bytes) }
    } finally {
      release()
    }
  }

  app.post('/documents', {
    schema: {
      tags: ['documents'],
      summary: 'Upload a purchase-order PDF and extract its part numbers',
      description: 'multipart/form-data with the PDF in the field `file` (or `pedido`). With `?classify=true` the part numbers are also classified in one batch job, returned as `job`. '
        + 'A user has at most DOCUMENT_MAX_CONCURRENT_PER_USER uploads in progress per instance; more get 429 `too_many_uploads` with Retry-After.',
      consumes: ['multipart/form-data'],
      querystring: Type.Object({ classify: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
      response: {
        201: Type.Object({ ...DocumentResponse.properties, job: Type.Optional(Nullable(Type.Ref(Job))) }),
        ...errorResponses(400, 401, 413, 415, 422, 429, 502, 503),
      },
    },
  }, async (request, reply) => {
    const { filename, bytes, sizeBytes, sha256, extracted } = await receive(request)
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

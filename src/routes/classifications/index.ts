import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BatchBody, ClassifyBody, Classification, Job } from '../../schemas/jobs.js'
import { getDocument } from '../../services/documents/documents-store.js'
import { documentBatchItems } from '../../services/documents/document-batch.js'
import { errorResponses, IdParams, Nullable, PageQuery, PlainText, Uuid } from '../../schemas/common.js'
import { getJobRecord, getJobView } from '../../services/jobs/jobs-store.js'
import {
  getClassification, listClassifications, normalizePartnumber, reviewClassification, type ClassificationStatus as Status, type ReviewChange,
  type ReviewConflict,
} from '../../services/classifications/classifications-store.js'
import { checkNcm } from '../../services/ncm/ncm-check.js'
import { formatNcm } from '../../services/ai/classification-result.js'
import { conflict, HttpError, notFound } from '../../http-errors.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { canSee, withEventsUrl } from '../jobs/job-response.js'

const ClassificationStatus = (description: string) =>
  Type.Union([Type.Literal('ACTIVE'), Type.Literal('PENDING'), Type.Literal('REJECTED'), Type.Literal('REPLACED')], { description })

const CONFLICT_MESSAGES: Record<ReviewConflict, (status: Status) => string> = {
  classification_status_changed: (status) => `The classification is ${status} now: someone decided meanwhile; reload and decide again`,
  classification_conflict: (status) => `Another classification of this part number was accepted at the same moment (this one is ${status}); reload and decide again`,
}

const classifications: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  app.addHook('onRequest', app.authenticate)

  app.post('/classifications', {
    schema: {
      tags: ['classifications'],
      summary: 'Classify one part number',
      description: 'Answers 202 with the job at once. Follow it at `events_url` (SSE) or `GET /jobs/:id`. '
        + 'A part number with an accepted classification is answered from history unless `reclassify` is true.',
      body: ClassifyBody,
      response: { 202: Type.Ref(Job), ...errorResponses(400, 401, 429, 502, 503) },
    },
  }, async (request, reply) => {
    if (!request.body.partnumber.trim()) throw new HttpError(400, 'invalid_request', 'partnumber must not be blank')
    const job = await app.classifications.startSingle(request.identity, request.body)
    return reply.code(202).header('location', `/jobs/${job.id}`).send(withEventsUrl(app, request.identity, job))
  })

  app.post('/classifications/batch', {
    schema: {
      tags: ['classifications'],
      summary: 'Classify many part numbers in one batch job',
      description: '`{partnumbers: [{partnumber, description?, manufacturer?, supplier?}]}`, or `{document_id, partnumbers?: [subset]}` for an uploaded '
        + 'purchase order. One item per distinct part number; those with an accepted classification are answered from history unless `reclassify` is true. '
        + 'Answers 202 with the job; follow it at `events_url` (SSE: snapshot, progress, item, done).',
      body: BatchBody,
      response: { 202: Type.Ref(Job), ...errorResponses(400, 401, 404, 429, 502, 503) },
    },
  }, async (request, reply) => {
    const body = request.body
    let items = 'document_id' in body ? undefined : body.partnumbers
    let documentId: string | undefined
    if ('document_id' in body) {
      const doc = await getDocument(pool, body.document_id)
      if (!doc || !canSee(request, doc.owner_id)) throw notFound('document')
      items = documentBatchItems(doc, body.partnumbers)
      documentId = doc.id
    }
    const record = await app.classifications.startBatch(request.identity, { partnumbers: items!, reclassify: body.reclassify, documentId })
    const job = await getJobView(pool, record.id)
    if (!job) throw notFound('job')
    return reply.code(202).header('location', `/jobs/${job.id}`).send(withEventsUrl(app, request.identity, job))
  })

  app.get('/classifications', {
    schema: {
      tags: ['classifications'],
      summary: 'Classifications, newest first: the review queue with status=PENDING',
      description: 'The results of your own jobs (admins: everyone\'s), newest first, paginated with `limit` and `cursor` (`next_cursor` '
        + 'of the previous page; null on the last). `status=PENDING` is the review queue: results of the AI server the gateway could not '
        + 'trust by itself, each with `review_reasons` (`partnumber_mismatch`: the answer named `answered_partnumber` instead of the part '
        + 'number asked for; `attributed_by_order`: the answer named no part number and was given to an item by the order the AI server '
        + 'works in; `ncm_unknown`, `ncm_expired`, `ncm_not_leaf`: its NCM code is not a VALID item of the official NCM table) and the `job_id` that produced it. Every result carries `ncm_check`: its code checked against the current official table when it is read. Decide with `PATCH /classifications/:id`. Also filters by `job_id` and `partnumber`.',
      querystring: Type.Object({
        ...PageQuery,
        status: Type.Optional(ClassificationStatus('PENDING: the review queue')),
        job_id: Type.Optional(Uuid),
        partnumber: Type.Optional(PlainText(100, 1)),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(Type.Ref(Classification)), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401) },
    },
  }, async (request) => {
    const q = request.query
    const limit = q.limit ?? 50
    const items = await listClassifications(pool, {
      ownerId: request.identity.role === 'ADMIN' ? undefined : request.identity.id,
      status: q.status,
      jobId: q.job_id,
      partnumber: q.partnumber ? normalizePartnumber(q.partnumber) : undefined,
      before: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit,
    })
    const last = items.at(-1)
    return { items, next_cursor: items.length === limit && last ? encodeCursor(last.created_at, last.id) : null }
  })

  app.patch('/classifications/:id', {
    schema: {
      tags: ['classifications'],
      summary: 'Review a classification: accept (ACTIVE), reject (REJECTED), correct its NCM code',
      description: 'A result the gateway could not trust by itself is stored PENDING with its `review_reasons` and is not used '
        + '(a part number is answered from history only by its ACTIVE classification); it waits for a decision, listed by '
        + '`GET /classifications?status=PENDING`.\n\n'
        + '- `ACTIVE` accepts it: it becomes the part number\'s accepted classification and the one accepted before becomes REPLACED. '
        + 'The same reinstates a REJECTED or restores a REPLACED classification.\n'
        + '- `REJECTED` rejects it; the part number\'s accepted classification is left as it is. Rejecting the ACTIVE one withdraws it: '
        + 'the part number then has no accepted classification and its next request goes to the AI server.\n'
        + '- `ncm` corrects the code by hand (alone or with `status`), only to a code VALID in the official NCM table '
        + '(find one with `GET /ncm?q=`): anything else is refused with 422 `ncm_not_valid` and the check\'s `ncm_check_status` '
        + '(UNKNOWN, EXPIRED, NOT_LEAF). The result keeps its review reasons (why it waited) and records the correction in '
        + '`correction` (`previous_ncm`, `corrected_by`, `corrected_at`). A correction without `status` of a PENDING result '
        + 'held back only by its NCM check (every reason is `ncm_unknown`, `ncm_expired` or `ncm_not_leaf`) accepts it: the one '
        + 'thing the gateway doubted is the code, and a person has just chosen the official one, as a customs broker fixing a code '
        + 'in the review queue means to. A result held back for another reason too (`partnumber_mismatch`, `attributed_by_order`) '
        + 'stays PENDING until accepted; send `{ncm, status: "ACTIVE"}` to correct and accept in one step. Correcting an ACTIVE, '
        + 'REJECTED or REPLACED result changes its code only.\n\n'
        + 'Any decision may be changed later; repeating one changes nothing but who reviewed it last (`reviewed_at`). Send '
        + '`expected_status` (the status you saw: PENDING in the review queue) so as not to overrule a decision made meanwhile: '
        + '409 `classification_status_changed` when it has another status now. 409 `classification_conflict`: another classification '
        + 'of the part number became accepted at the same moment; reload and decide again. '
        + 'Allowed to the owner of the job that produced it, and to admins; anyone else gets 404.',
      params: IdParams,
      body: Type.Object({
        status: Type.Optional(Type.Union([Type.Literal('ACTIVE'), Type.Literal('REJECTED')], { description: 'The decision: accept or reject' })),
        ncm: Type.Optional(Type.String({
          pattern: '^[0-9]{4}\\.?[0-9]{2}\\.?[0-9]{2}$',
          description: 'The corrected NCM code, 8 digits (dots allowed: 8542.31.90); it must be VALID in the official NCM table',
          examples: ['85423190'],
        })),
        expected_status: Type.Optional(ClassificationStatus('The status the reviewer saw; the review is refused (409 classification_status_changed) if it is another one now')),
      }, { additionalProperties: false }),
      response: { 200: Type.Ref(Classification), ...errorResponses(400, 401, 404, 409, 422) },
    },
  }, async (request) => {
    const { status, ncm, expected_status: expected } = request.body
    if (status === undefined && ncm === undefined) throw new HttpError(400, 'invalid_request', 'Send status, ncm, or both')
    const existing = await getClassification(pool, request.params.id)
    // The producing job's owner only (its record: a batch's view would read every item).
    const producer = existing?.job_id ? await getJobRecord(pool, existing.job_id) : undefined
    if (!existing || !(request.identity.role === 'ADMIN' || (producer && canSee(request, producer.owner_id)))) throw notFound('classification')
    let correction: ReviewChange['correction']
    if (ncm !== undefined) {
      const code = ncm.replace(/\./g, '')
      // Checked afresh (not from the readers' cache): only a code VALID now is written.
      const check = await checkNcm(pool, code)
      if (check.status !== 'VALID') {
        throw new HttpError(422, 'ncm_not_valid', `The NCM code ${formatNcm(code)} is ${check.status} in the official NCM table${check.table_version ? ` (version ${check.table_version})` : ' (no table loaded)'}; choose a VALID one (GET /ncm?q=)`,
          {}, { ncm_check_status: check.status })
      }
      correction = { ncm: code, tableVersion: check.table_version }
    }
    const outcome = await reviewClassification(pool, request.params.id, { decision: status, correction }, request.identity.id, expected)
    if (!outcome) throw notFound('classification')
    if (!outcome.ok) throw conflict(outcome.conflict, CONFLICT_MESSAGES[outcome.conflict](outcome.status))
    return outcome.classification
  })
}

export default classifications

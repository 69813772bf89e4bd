import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { BatchBody, ClassifyBody, Classification, Job } from '../../schemas/jobs.js'
import { getDocument } from '../../services/documents/documents-store.js'
import { documentBatchItems } from '../../services/documents/document-batch.js'
import { errorResponses, IdParams } from '../../schemas/common.js'
import { getJobView } from '../../services/jobs/jobs-store.js'
import { getClassification, reviewClassification } from '../../services/classifications/classifications-store.js'
import { HttpError, notFound } from '../../http-errors.js'
import { canSee, withEventsUrl } from '../jobs/job-response.js'

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

  app.patch('/classifications/:id', {
    schema: {
      tags: ['classifications'],
      summary: 'Accept (ACTIVE) or reject (REJECTED) a classification',
      description: 'Accepting replaces the part number\'s current accepted classification. Allowed to the owner of the job that produced it, and to admins.',
      params: IdParams,
      body: Type.Object({ status: Type.Union([Type.Literal('ACTIVE'), Type.Literal('REJECTED')]) }, { additionalProperties: false }),
      response: { 200: Type.Ref(Classification), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const existing = await getClassification(pool, request.params.id)
    const producer = existing?.job_id ? await getJobView(pool, existing.job_id) : undefined
    if (!existing || !(request.identity.role === 'ADMIN' || (producer && canSee(request, producer.owner_id)))) throw notFound('classification')
    const updated = await reviewClassification(pool, request.params.id, request.body.status, request.identity.id)
    if (!updated) throw notFound('classification')
    return updated
  })
}

export default classifications

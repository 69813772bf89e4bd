import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { Job, JobKind, JobStatus } from '../../schemas/jobs.js'
import { errorResponses, IdParams, Nullable, PageQuery, PlainText } from '../../schemas/common.js'
import { getJobView, listJobs } from '../../services/jobs/jobs-store.js'
import { normalizePartnumber } from '../../services/classifications/classifications-store.js'
import { notFound } from '../../http-errors.js'
import { decodeCursor, encodeCursor } from '../cursor.js'
import { canSee, withEventsUrl } from './job-response.js'

const jobs: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  app.addHook('onRequest', app.authenticate)

  app.get('/jobs', {
    schema: {
      tags: ['jobs'],
      summary: 'Jobs, newest first: your own, or everyone\'s for admins',
      querystring: Type.Object({
        ...PageQuery,
        status: Type.Optional(JobStatus),
        kind: Type.Optional(JobKind),
        partnumber: Type.Optional(PlainText(100, 1)),
        from: Type.Optional(Type.String({ format: 'date-time' })),
        to: Type.Optional(Type.String({ format: 'date-time' })),
      }, { additionalProperties: false }),
      response: { 200: Type.Object({ items: Type.Array(Type.Ref(Job)), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401) },
    },
  }, async (request) => {
    const q = request.query
    const limit = q.limit ?? 50
    const items = await listJobs(pool, {
      ownerId: request.identity.role === 'ADMIN' ? undefined : request.identity.id,
      status: q.status,
      kind: q.kind,
      partnumber: q.partnumber ? normalizePartnumber(q.partnumber) : undefined,
      from: q.from ? new Date(q.from) : undefined,
      to: q.to ? new Date(q.to) : undefined,
      before: q.cursor ? decodeCursor(q.cursor) : undefined,
      limit,
    })
    const last = items.at(-1)
    return { items, next_cursor: items.length === limit && last ? encodeCursor(last.created_at, last.id) : null }
  })

  app.get('/jobs/:id', {
    schema: { tags: ['jobs'], summary: 'One job, with its result', params: IdParams, response: { 200: Type.Ref(Job), ...errorResponses(400, 401, 404) } },
  }, async (request) => {
    const job = await getJobView(pool, request.params.id)
    if (!job || !canSee(request, job.owner_id)) throw notFound('job')
    return withEventsUrl(app, request.identity, job)
  })

  app.post('/jobs/:id/retry', {
    schema: {
      tags: ['jobs'],
      summary: 'Start a failed job, or the failed items of a finished batch, again (a new attempt on fresh channels)',
      description: 'A single job can be retried when it FAILED: it is sent to the AI server again. A batch can be retried once it '
        + 'has ended (DONE or FAILED) with items that have no result: only those items (FAILED) are sent again, as the batch\'s next '
        + 'attempt (`attempt` + 1, new chunks on fresh progress channels); the items that have a result keep it, and the progress '
        + 'counts them as done. When the new attempt ends, a new task_results message goes out. '
        + '409 `job_not_failed` while the job is queued or running (or a single job that did not fail); 409 `nothing_to_retry` '
        + 'for a batch where every item has a result.',
      params: IdParams,
      response: { 202: Type.Ref(Job), ...errorResponses(400, 401, 404, 409, 429, 502, 503) },
    },
  }, async (request, reply) => {
    const record = await app.classifications.retry(request.identity, request.params.id)
    const job = await getJobView(pool, record.id)
    if (!job) throw notFound('job')
    return reply.code(202).header('location', `/jobs/${job.id}`).send(withEventsUrl(app, request.identity, job))
  })
}

export default jobs

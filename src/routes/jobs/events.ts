import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { OutgoingHttpHeaders } from 'node:http'
import { errorResponses, IdParams } from '../../schemas/common.js'
import { getJobRecord, getJobView, isTerminal, type JobView } from '../../services/jobs/jobs-store.js'
import { singleJobEvent } from '../../services/jobs/single-job-events.js'
import { formatNcm, type ClassificationFields } from '../../services/ai/classification-result.js'
import type { AiMessage } from '../../services/ai/messages.js'
import { notFound } from '../../http-errors.js'

const MAX_EVENT_ID = 2 ** 31

/**
 * GET /jobs/:id/events: the job's Server-Sent Events stream. The database is the truth: the stream
 * opens with a snapshot of the job as stored, then forwards live messages, and ends after `done`
 * or `failed`. Reconnecting (EventSource does it by itself) simply gets a fresh snapshot.
 */
const jobEvents: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool

  app.get('/jobs/:id/events', {
    schema: {
      tags: ['jobs'],
      summary: 'Live progress of a job (text/event-stream)',
      description: 'Events: `snapshot` (the job as stored), `progress`, then `done` or `failed`, after which the stream ends. '
        + 'Authenticate with the Bearer header, the session cookie, or the `token` of the job\'s `events_url`.',
      params: IdParams,
      querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 2000 })) }, { additionalProperties: false }),
      headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ maxLength: 20 })) }),
      response: { 200: Type.String({ description: 'text/event-stream' }), ...errorResponses(400, 401, 404) },
    },
  }, async (request, reply) => {
    const identity = await app.authenticateStream(request, request.params.id)
    const job = await getJobRecord(pool, request.params.id)
    if (!job || (job.owner_id !== identity.id && identity.role !== 'ADMIN')) throw notFound('job')

    reply.hijack()
    const stream = app.streams.open(reply.raw, reply.getHeaders() as OutgoingHttpHeaders)
    // Ids grow within the job for this client, across its reconnects.
    let nextId = Math.min(Number.parseInt(request.headers['last-event-id'] ?? '0', 10) || 0, MAX_EVENT_ID) + 1
    const send = (event: string, data: unknown) => stream.send(event, nextId++, data)

    // The final event is told from the database, which the listener has written by then.
    const sendFinal = async (fallback: { type: 'done'; fields: ClassificationFields } | { type: 'failed'; error: string }) => {
      const stored = await getJobView(pool, job.id).catch(() => undefined)
      if (stored && isTerminal(stored.status)) sendEnd(stored)
      else if (fallback.type === 'failed') send('failed', { job_id: job.id, status: 'FAILED', error: fallback.error })
      else send('done', { job_id: job.id, status: 'DONE', result: liveResult(job.partnumber, fallback.fields) })
      stream.end()
    }
    const sendEnd = (view: JobView) => {
      if (view.status === 'DONE') send('done', { job_id: view.id, status: 'DONE', result: view.result })
      if (view.status === 'FAILED') send('failed', { job_id: view.id, status: 'FAILED', error: view.error })
    }

    const held: AiMessage[] = []
    let live = false
    let ending = false
    const forward = (message: AiMessage) => {
      if (ending) return
      const event = singleJobEvent(message)
      if (event.type === 'progress') send('progress', { job_id: job.id, ...event.progress })
      else if (event.type === 'done' || event.type === 'failed') {
        ending = true
        void sendFinal(event)
      }
    }

    try {
      // Listen first, read second: a message arriving while the snapshot is read is held, not lost.
      if (!isTerminal(job.status)) stream.onClose(app.hub.subscribe(job.channel, (message) => (live ? forward(message) : held.push(message))))
      const snapshot = await getJobView(pool, job.id)
      if (!stream.isOpen) return
      if (!snapshot) return stream.end()
      send('snapshot', snapshot)
      if (isTerminal(snapshot.status) || snapshot.attempt !== job.attempt) {
        sendEnd(snapshot)
        return stream.end()
      }
      live = true
      for (const message of held.splice(0)) forward(message)
    } catch (err) {
      request.log.warn({ err: (err as Error).message, jobId: job.id }, 'could not read the job snapshot; asking the client to reconnect')
      stream.end(app.config.sse.retryMs)
    }
  })
}

/** A result as the AI server sent it, for the rare final event the database could not confirm. */
function liveResult(partnumber: string | null, fields: ClassificationFields) {
  return {
    partnumber, ncm: fields.ncm, ncm_formatted: formatNcm(fields.ncm), ex: fields.ex, nve: fields.nve,
    description: fields.description, manufacturer: fields.manufacturer, confidence: fields.confidence,
  }
}

export default jobEvents

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { OutgoingHttpHeaders } from 'node:http'
import { errorResponses, IdParams } from '../../schemas/common.js'
import { getJobRecords, getJobViews, isTerminal, type JobRecord, type JobView } from '../../services/jobs/jobs-store.js'
import { BatchLoader } from '../../db/batch-loader.js'
import { chunkChannels, itemsFinishedAfter } from '../../services/jobs/batch-store.js'
import type { SseStream } from '../../services/sse/sse-stream.js'
import { singleJobEvent } from '../../services/jobs/single-job-events.js'
import { formatNcm, type ClassificationFields } from '../../services/ai/classification-result.js'
import type { AiMessage, Progress } from '../../services/ai/messages.js'
import { notFound } from '../../http-errors.js'
import { isDatabaseBusy, isDatabaseUnavailable } from '../../db/errors.js'

const MAX_EVENT_ID = 2 ** 31

/**
 * GET /jobs/:id/events: the job's Server-Sent Events stream. The database is the truth: the stream
 * opens with a snapshot of the job as stored, then forwards live messages, and ends after `done`
 * or `failed`. Reconnecting (EventSource does it by itself) simply gets a fresh snapshot.
 */
const jobEvents: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  // Streams opening together (a reconnect storm) read their jobs with one query per turn of the event loop.
  const records = new BatchLoader((ids: string[]) => getJobRecords(pool, ids))
  const views = new BatchLoader((ids: string[]) => getJobViews(pool, ids))

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
    const checkedAt = Date.now()
    let identity, record
    try {
      // Independent, so read together; the job is shown only once the identity is known to own it (or be an admin).
      [identity, record] = await Promise.all([app.authenticateStream(request, request.params.id), records.load(request.params.id)])
    } catch (err) {
      if (isDatabaseUnavailable(err)) app.metrics.databaseUnavailable.inc({ where: 'request' })
      else if (isDatabaseBusy(err)) app.metrics.databaseBusy.inc()
      else throw err
      // EventSource gives up for good on any answer but 200: an empty stream with a retry hint
      // brings it back by itself once the database is reachable again. It reveals nothing.
      reply.hijack()
      app.streams.open(reply.raw, reply.getHeaders() as OutgoingHttpHeaders).end(app.config.sse.retryMs)
      return
    }
    if (!record || (record.owner_id !== identity.id && identity.role !== 'ADMIN')) throw notFound('job')
    // What the stream needs of the job, and no more: it is kept for as long as the stream is open.
    const job: FollowedJob = { id: record.id, kind: record.kind, status: record.status, partnumber: record.partnumber, attempt: record.attempt, channel: record.channel }

    reply.hijack()
    const stream = app.streams.open(reply.raw, reply.getHeaders() as OutgoingHttpHeaders)
    // Closed at once if the session ends (logout, refresh-token reuse, account disabled or demoted) while it is open.
    stream.onClose(app.sessionRevocations.watch({ sessionId: identity.sessionId, userId: identity.id, ownerId: record.owner_id, close: () => stream.end() }, checkedAt))
    // Ids grow within the job for this client, across its reconnects.
    let nextId = Math.min(Number.parseInt(request.headers['last-event-id'] ?? '0', 10) || 0, MAX_EVENT_ID) + 1
    const send = (event: string, data: unknown) => stream.send(event, nextId++, data)
    const follow = job.kind === 'BATCH' ? followBatch : followSingle
    try {
      await follow(job, stream, send)
    } catch (err) {
      request.log.warn({ err: (err as Error).message, jobId: job.id }, 'could not read the job; asking the client to reconnect')
      stream.end(app.config.sse.retryMs)
    }
  })

  type Send = (event: string, data: unknown) => void
  type FollowedJob = Pick<JobRecord, 'id' | 'kind' | 'status' | 'partnumber' | 'attempt' | 'channel'>

  function sendEnd(send: Send, view: JobView) {
    const counts = view.counts ? { counts: view.counts } : {}
    if (view.status === 'DONE') send('done', { job_id: view.id, status: 'DONE', ...(view.kind === 'SINGLE' ? { result: view.result } : counts) })
    if (view.status === 'FAILED') send('failed', { job_id: view.id, status: 'FAILED', error: view.error, ...counts })
  }

  /**
   * Listen first, read second: messages arriving while the snapshot is read are held, then
   * handled in order.
   */
  async function openWithSnapshot(job: FollowedJob, stream: SseStream, send: Send, channels: string[], onMessage: (m: AiMessage) => void, onSnapshot?: (s: JobView) => void): Promise<void> {
    const held: AiMessage[] = []
    let live = false
    if (!isTerminal(job.status)) {
      for (const channel of channels) stream.onClose(app.hub.subscribe(channel, (m) => (live ? onMessage(m) : held.push(m))))
    }
    // Progress received and not yet written, taken before the read: a message written while the
    // snapshot is read is then in one or the other, and any message after this comes as an event.
    const unwritten = furthestOf(channels.map((channel) => app.jobListener.unwrittenProgress(channel)))
    const stored = await views.load(job.id)
    if (!stream.isOpen) return undefined
    if (!stored) return stream.end()
    const snapshot = withLiveProgress(stored, job, unwritten)
    send('snapshot', snapshot)
    if (isTerminal(snapshot.status) || snapshot.attempt !== job.attempt) {
      sendEnd(send, snapshot)
      return stream.end()
    }
    onSnapshot?.(snapshot)
    live = true
    for (const message of held.splice(0)) onMessage(message)
  }

  async function followSingle(job: FollowedJob, stream: SseStream, send: Send) {
    let ending = false
    // The final event is told from the database, which the listener has written by then.
    const sendFinal = async (fallback: { type: 'done'; fields: ClassificationFields } | { type: 'failed'; error: string }) => {
      const stored = await views.load(job.id).catch(() => undefined)
      if (stored && isTerminal(stored.status)) sendEnd(send, stored)
      else if (fallback.type === 'failed') send('failed', { job_id: job.id, status: 'FAILED', error: fallback.error })
      else send('done', { job_id: job.id, status: 'DONE', result: liveResult(job.partnumber, fallback.fields) })
      stream.end()
    }
    await openWithSnapshot(job, stream, send, [job.channel], (message) => {
      if (ending) return
      const event = singleJobEvent(message)
      if (event.type === 'progress') send('progress', { job_id: job.id, ...event.progress })
      else if (event.type === 'done' || event.type === 'failed') {
        ending = true
        void sendFinal(event)
      }
    }, () => app.jobListener.learn(job.channel, { id: job.id, attempt: job.attempt, kind: 'SINGLE', partnumber: job.partnumber }))
  }

  /**
   * A batch: AI progress passes through; any other message means items (or the batch) may have
   * finished, so the stream sends what the database now holds that this client has not seen.
   */
  async function followBatch(job: FollowedJob, stream: SseStream, send: Send) {
    let lastSent = 0
    let pass: Promise<void> | undefined
    let passAgain = false
    const sendNewItems = async () => {
      for (const item of await itemsFinishedAfter(pool, job.id, lastSent)) {
        send('item', { job_id: job.id, partnumber: item.partnumber, status: item.status, source: item.source, result: item.result, error: item.error })
        lastSent = item.finish_order ?? lastSent
      }
      const current = await records.load(job.id)
      if (current && isTerminal(current.status)) {
        sendEnd(send, (await views.load(job.id))!)
        stream.end()
      }
    }
    const catchUp = () => {
      if (pass) return void (passAgain = true)
      pass = (async () => {
        do {
          passAgain = false
          await sendNewItems().catch(() => stream.end(app.config.sse.retryMs))
        } while (passAgain && stream.isOpen)
      })().finally(() => { pass = undefined })
    }
    const channels = [job.channel, ...(await chunkChannels(pool, job.id, job.attempt))]
    await openWithSnapshot(job, stream, send, channels, (message) => {
      if (!stream.isOpen) return
      if (message.status === 'processing') send('progress', { job_id: job.id, ...message.progress })
      else catchUp()
    }, (snapshot) => {
      lastSent = Math.max(0, ...(snapshot.items ?? []).map((i) => i.finish_order ?? 0))
    })
  }
}

/**
 * The stored job, with the progress this instance received and has not written yet when that is
 * further: a client reconnecting right after an event must not see its progress go back. A batch
 * counts its finished items itself; of the AI's progress it shows the message, as its write will.
 */
function withLiveProgress(view: JobView, job: { attempt: number }, live: Progress | undefined): JobView {
  if (!live || isTerminal(view.status) || view.attempt !== job.attempt) return view
  if (view.kind === 'BATCH') return { ...view, status: 'RUNNING', progress: { current: view.progress?.current ?? 0, total: view.progress?.total ?? view.items?.length ?? 0, message: live.message } }
  if (view.progress && view.progress.current > live.current) return view
  return { ...view, status: 'RUNNING', progress: { current: live.current, total: live.total, message: live.message } }
}

function furthestOf(progress: Array<Progress | undefined>): Progress | undefined {
  let furthest: Progress | undefined
  for (const p of progress) if (p && (!furthest || p.current >= furthest.current)) furthest = p
  return furthest
}

/** A result as the AI server sent it, for the rare final event the database could not confirm. */
function liveResult(partnumber: string | null, fields: ClassificationFields) {
  return {
    partnumber, ncm: fields.ncm, ncm_formatted: formatNcm(fields.ncm), ex: fields.ex, nve: fields.nve,
    description: fields.description, manufacturer: fields.manufacturer, confidence: fields.confidence,
  }
}

export default jobEvents

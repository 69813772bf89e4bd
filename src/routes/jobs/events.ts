import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { OutgoingHttpHeaders } from 'node:http'
import { errorResponses, IdParams } from '../../schemas/common.js'
import { getJobRecords, getJobViews, isTerminal, type JobRecord, type JobView } from '../../services/jobs/jobs-store.js'
import { BatchLoader } from '../../db/batch-loader.js'
import { chunkChannels, countItems, itemsFinishedAfter } from '../../services/jobs/batch-store.js'
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
 * or `failed` (but a job failed by its deadline may still be answered late: its stream stays open
 * for that). Reconnecting (EventSource does it by itself) simply gets a fresh snapshot.
 */
const jobEvents: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  const { retryMs } = app.config.sse
  // Streams opening together (a reconnect storm) read their jobs with one query per turn of the event loop.
  const records = new BatchLoader((ids: string[]) => getJobRecords(pool, ids))
  const views = new BatchLoader((ids: string[]) => getJobViews(pool, ids))

  app.get('/jobs/:id/events', {
    schema: {
      tags: ['jobs'],
      summary: 'Live progress of a job (text/event-stream)',
      description: 'Events: `snapshot` (the job as stored), `progress`, `item` (batch jobs: a part number answered), `waiting`, then `done` or `failed`. '
        + 'The stream ends after `done`, and after `failed`, except when the job was failed by the gateway\'s deadline (`timed_out: true` in the '
        + '`failed` event): then it stays open, since the AI server may still answer late; a late result turns the job DONE and the stream '
        + 'sends `done` and ends (`progress` the AI server still sends meanwhile is passed on). Such a `failed` also says since when the '
        + 'job has been quiet (`last_activity_at`). A stream opened on such a job sends its `snapshot` and `failed`, and stays open likewise. '
        + '`waiting` {job_id, quiet_seconds, last_activity_at} comes once per heartbeat interval (SSE_HEARTBEAT_INTERVAL) while the job has '
        + 'had no word from the AI server for that long: how long it has been quiet (the AI server says nothing while its agents work). '
        + 'Batch jobs: `progress` {current, total, message} counts the items answered (done or failed) of all the batch\'s items, as this '
        + 'stream knows them (never going back); `message` is the AI server\'s latest text. '
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
      app.streams.open(reply.raw, reply.getHeaders() as OutgoingHttpHeaders).end(retryMs)
      return
    }
    if (!record || (record.owner_id !== identity.id && identity.role !== 'ADMIN')) throw notFound('job')
    // What the stream needs of the job, and no more: it is kept for as long as the stream is open.
    const job: FollowedJob = {
      id: record.id, kind: record.kind, status: record.status, timed_out: record.timed_out, partnumber: record.partnumber, attempt: record.attempt, channel: record.channel,
    }

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
      stream.end(retryMs)
    }
  })

  type Send = (event: string, data: unknown) => void
  type FollowedJob = Pick<JobRecord, 'id' | 'kind' | 'status' | 'timed_out' | 'partnumber' | 'attempt' | 'channel'>

  /** A job's final event, as stored. */
  function sendEnd(send: Send, view: JobView, failure: { last_activity_at?: string } = {}) {
    const counts = view.counts ? { counts: view.counts } : {}
    if (view.status === 'DONE') send('done', { job_id: view.id, status: 'DONE', ...(view.kind === 'SINGLE' ? { result: view.result } : counts) })
    if (view.status === 'FAILED') send('failed', { job_id: view.id, status: 'FAILED', error: view.error, timed_out: view.timed_out, ...failure, ...counts })
  }

  /**
   * How a stream ends once its job has: `done`, or `failed` once (a later failure is not told
   * twice), after which it ends unless the job was failed by its deadline at the attempt the stream
   * follows. Then it stays open for a late answer, saying how long the job has been quiet.
   */
  class Ending {
    failedSent = false

    constructor(private readonly job: FollowedJob, private readonly stream: SseStream, private readonly send: Send, private readonly waiting: Waiting) {}

    /** `view`: the job as stored, finished. Returns true when the stream stays open. */
    show(view: JobView, recheck: () => void): boolean {
      const waitsLate = view.status === 'FAILED' && awaitsLateAnswer(view, this.job.attempt)
      // Quiet since its last word as stored (a deadline does not move it), which this stream may have heard a little later.
      if (waitsLate) this.waiting.start(quietSince(view), recheck)
      // Failed by the deadline: since when the job has been quiet, as its `waiting` events will say.
      if (view.status === 'DONE' || !this.failedSent) sendEnd(this.send, view, waitsLate ? { last_activity_at: this.waiting.lastActivityAt } : {})
      if (view.status === 'FAILED') this.failedSent = true
      if (waitsLate) return true
      this.stream.end()
      return false
    }
  }

  /**
   * Listen first, read second: messages arriving while the snapshot is read are held, then
   * handled in order. A job failed by its deadline is listened to as a live one: it may be revived.
   */
  async function openWithSnapshot(job: FollowedJob, stream: SseStream, send: Send, channels: string[], onMessage: (m: AiMessage, channel: string) => void, onSnapshot: (s: JobView) => void): Promise<void> {
    const held: Array<[AiMessage, string]> = []
    let live = false
    if (!isTerminal(job.status) || awaitsLateAnswer(job, job.attempt)) {
      for (const channel of channels) stream.onClose(app.hub.subscribe(channel, (m) => (live ? onMessage(m, channel) : held.push([m, channel]))))
    }
    // Progress received and not yet written, taken before the read: a message written while the
    // snapshot is read is then in one or the other, and any message after this comes as an event.
    const unwritten = furthestOf(channels.map((channel) => app.jobListener.unwrittenProgress(channel)))
    const stored = await views.load(job.id)
    if (!stream.isOpen) return undefined
    if (!stored) return stream.end()
    const snapshot = withLiveProgress(stored, job, unwritten)
    send('snapshot', snapshot)
    if (snapshot.attempt !== job.attempt) {
      sendEnd(send, snapshot)
      return stream.end()
    }
    onSnapshot(snapshot)
    if (!stream.isOpen) return undefined
    live = true
    for (const [message, channel] of held.splice(0)) onMessage(message, channel)
  }

  async function followSingle(job: FollowedJob, stream: SseStream, send: Send) {
    const waiting = new Waiting(stream, send, job.id)
    const ending = new Ending(job, stream, send, waiting)
    // A done or failed being told: the AI's progress meanwhile is not (it would come after the end).
    let finishing = false
    let told: Promise<void> = Promise.resolve()
    // Whether the job still waits for a late answer, asked on the heartbeat: a revival whose message
    // this instance missed, or a retry (a new attempt, on another channel), is found in the database.
    const recheck = () => void records.load(job.id).then((r) => {
      if (r && !awaitsLateAnswer(r, job.attempt) && stream.isOpen) tell(undefined)
    }, () => undefined)
    // The end is told from the database, which the listener has written by then; `event` is the
    // message as the AI server sent it, for when the database could not confirm it.
    const settle = async (event: Fallback | undefined) => {
      const stored = await views.load(job.id).catch(() => undefined)
      if (!stream.isOpen) return
      if (stored && stored.attempt !== job.attempt) return stream.end(retryMs)
      if (stored && isTerminal(stored.status)) {
        if (ending.show(stored, recheck)) finishing = false
        return
      }
      if (!event) return
      if (event.type === 'failed') {
        if (!ending.failedSent) send('failed', { job_id: job.id, status: 'FAILED', error: event.error, timed_out: false })
      } else send('done', { job_id: job.id, status: 'DONE', result: liveResult(job.partnumber, event.fields) })
      stream.end()
    }
    // One at a time, in arrival order: a late `done` right after the deadline's `failed` is told after it.
    const tell = (event: Fallback | undefined) => {
      told = told.then(() => settle(event)).catch(() => stream.end(retryMs))
    }
    await openWithSnapshot(job, stream, send, [job.channel], (message) => {
      if (!stream.isOpen) return
      const event = singleJobEvent(message)
      if (event.type === 'progress') {
        if (finishing) return
        waiting.heard()
        send('progress', { job_id: job.id, ...event.progress })
      } else if (event.type === 'done' || event.type === 'failed') {
        // A failure may be the gateway's own (the deadline); a result is the AI server's word.
        if (event.type === 'done') waiting.heard()
        finishing = true
        tell(event)
      }
    }, (snapshot) => {
      if (isTerminal(snapshot.status)) return void ending.show(snapshot, recheck)
      app.jobListener.learn(job.channel, { id: job.id, attempt: job.attempt, kind: 'SINGLE', partnumber: job.partnumber })
      waiting.start(quietSince(snapshot))
    })
  }

  /**
   * A batch: the AI's progress is told as the items answered so far; any other message means items
   * (or the batch) may have finished, so the stream sends what the database now holds that this
   * client has not seen.
   */
  async function followBatch(job: FollowedJob, stream: SseStream, send: Send) {
    const waiting = new Waiting(stream, send, job.id)
    const ending = new Ending(job, stream, send, waiting)
    let lastSent = 0
    // Items answered (done or failed) and items of the batch, as this stream knows them, and the
    // furthest count it has told: its progress never goes back.
    let answered = 0
    let total = 0
    let told = 0
    let pass: Promise<void> | undefined
    let passAgain = false
    const sendNewItems = async () => {
      // The job first, its items second: a batch found finished here had finished its items before
      // they were read, so none of them is left out of the stream before its end.
      const current = await records.load(job.id)
      for (const item of await itemsFinishedAfter(pool, job.id, lastSent)) {
        if (!stream.isOpen) return
        send('item', { job_id: job.id, partnumber: item.partnumber, status: item.status, source: item.source, result: item.result, error: item.error })
        answered = Math.min(total, answered + 1)
        lastSent = item.finish_order ?? lastSent
      }
      if (!current || !stream.isOpen) return
      if (current.attempt !== job.attempt) return stream.end(retryMs)
      if (isTerminal(current.status)) {
        const view = await views.load(job.id)
        if (view && stream.isOpen) ending.show(view, recheck)
      }
    }
    const catchUp = () => {
      if (pass) return void (passAgain = true)
      pass = (async () => {
        do {
          passAgain = false
          await sendNewItems().catch(() => stream.end(retryMs))
        } while (passAgain && stream.isOpen)
      })().finally(() => { pass = undefined })
    }
    const recheck = () => void records.load(job.id).then((r) => {
      if (r && !awaitsLateAnswer(r, job.attempt) && stream.isOpen) catchUp()
    }, () => undefined)
    const channels = [job.channel, ...(await chunkChannels(pool, job.id, job.attempt))]
    await openWithSnapshot(job, stream, send, channels, (message, channel) => {
      if (!stream.isOpen) return
      // The batch's own channel carries only the gateway's announcements; its chunks', the AI server's words.
      if (channel !== job.channel) waiting.heard()
      if (message.status === 'processing') {
        told = Math.max(told, answered)
        send('progress', { job_id: job.id, current: told, total, message: message.progress.message })
      } else catchUp()
    }, (snapshot) => {
      lastSent = Math.max(0, ...(snapshot.items ?? []).map((i) => i.finish_order ?? 0))
      total = snapshot.progress?.total ?? 0
      answered = told = snapshot.progress?.current ?? 0
      if (isTerminal(snapshot.status)) return void ending.show(snapshot, recheck)
      waiting.start(quietSince(snapshot))
    })
  }

  /** When the AI server last had a say in the job, as stored (epoch ms). */
  function quietSince(view: JobView): number {
    const stored = new Date(view.last_activity_at).getTime()
    return Number.isNaN(stored) ? Date.now() : stored
  }
}

type Fallback = { type: 'done'; fields: ClassificationFields } | { type: 'failed'; error: string }

/** Failed by the gateway's deadline at this attempt: a late answer may still turn it DONE. */
function awaitsLateAnswer(job: Pick<JobRecord, 'status' | 'timed_out' | 'attempt'>, attempt: number): boolean {
  return job.status === 'FAILED' && job.timed_out && job.attempt === attempt
}

/**
 * A stream's `waiting` events: on the shared heartbeat (no timer of its own), once per interval
 * without a word from the AI server, how long the job has been quiet.
 */
class Waiting {
  private since = 0

  constructor(private readonly stream: SseStream, private readonly send: (event: string, data: unknown) => void, private readonly jobId: string) {}

  /** A live job: quiet since `since` (epoch ms), as stored. */
  start(since: number, onReport?: () => void): void {
    this.since = since
    this.stream.whenQuiet(() => {
      this.send('waiting', { job_id: this.jobId, quiet_seconds: Math.max(0, Math.floor((Date.now() - this.since) / 1000)), last_activity_at: this.lastActivityAt })
      onReport?.()
    })
  }

  /** A word from the AI server. */
  heard(): void {
    this.since = Date.now()
  }

  get lastActivityAt(): string {
    return new Date(this.since).toISOString()
  }
}

/**
 * The stored job, with the progress this instance received and has not written yet when that is
 * further: a client reconnecting right after an event must not see its progress go back. A batch's
 * progress is its items answered (done or failed) of all its items; of the AI's progress it shows
 * the message, as its write will.
 */
function withLiveProgress(view: JobView, job: { attempt: number }, live: Progress | undefined): JobView {
  const running = live !== undefined && !isTerminal(view.status) && view.attempt === job.attempt
  if (view.kind === 'BATCH') {
    const counts = view.counts ?? countItems(view.items ?? [])
    const message = running ? live.message : view.progress?.message ?? null
    return { ...view, ...(running ? { status: 'RUNNING' as const } : {}), progress: { current: counts.done + counts.failed, total: counts.total, message } }
  }
  if (!running) return view
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

import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import type { AiMessage } from '../ai/messages.js'
import { finishJob, type JobAttempt, type JobEnd } from './job-outcomes.js'
import { closeChunk, finishItem, recordBatchActivity } from './batch-outcomes.js'
import { pendingChunkItems } from './batch-store.js'
import { singleJobEvent, type SingleJobEnd } from './single-job-events.js'
import { normalizePartnumber } from '../classifications/classifications-store.js'
import { TRUSTED } from '../classifications/review-reasons.js'

/** What applying a message did: `channelEnded` when nothing more is expected on it; `finished` when this call ended the job. */
export interface Applied {
  channelEnded: boolean
  finished?: JobEnd
}

/** Applied, and nothing more: the channel goes on, no job ended. */
export const NOTHING: Applied = { channelEnded: false }

/** A single job's message other than progress (which the listener hands to its ProgressWriter). */
export async function applySingleMessage(pool: pg.Pool, job: JobAttempt, message: SingleJobEnd, hash: Buffer, log: FastifyBaseLogger): Promise<Applied> {
  const event = singleJobEvent(message)
  switch (event.type) {
    case 'ignored':
      log.warn({ jobId: job.id, reason: event.reason }, 'AI message ignored')
      return NOTHING
    case 'done':
    case 'failed': {
      const outcome = event.type === 'done' ? { status: 'DONE' as const, fields: event.fields, review: TRUSTED } : { status: 'FAILED' as const, error: event.error }
      const payload = event.type === 'done' ? { status: 'done', result: event.fields } : { status: 'failed', error: event.error }
      const won = await finishJob(pool, job, outcome, { hash, payload: { ...payload, ai_job_id: message.jobId } })
      const reason = event.type === 'done' ? 'ai_result' : message.status === 'done' ? 'invalid_result' : 'ai_failed'
      return { channelEnded: true, finished: won ? { jobId: job.id, kind: 'SINGLE', status: outcome.status, reason } : undefined }
    }
  }
}

export const NEVER_ANSWERED = 'The AI server finished the batch without answering this part number'

/**
 * One message of a batch chunk. `partial_result` finishes the item it names; `failed` fails the
 * item it names, or the next pending one when it names none; `done` closes the chunk.
 */
export async function applyBatchMessage(pool: pg.Pool, job: JobAttempt, chunk: number, message: AiMessage, hash: Buffer, log: FastifyBaseLogger): Promise<Applied> {
  switch (message.status) {
    case 'processing':
      await recordBatchActivity(pool, job, message.progress, hash, { status: 'processing', progress: message.progress, ai_job_id: message.jobId })
      return NOTHING
    case 'partial_result': {
      const pending = await pendingChunkItems(pool, job.id, job.attempt, chunk)
      // The item the result names; a result naming none can only be for the last item waiting.
      const named = message.partnumber === null ? null : normalizePartnumber(message.partnumber)
      const item = pending.find((p) => p.partnumber === named) ?? (named === null && pending.length === 1 ? pending[0] : undefined)
      if (!item) {
        log.warn({ jobId: job.id, partnumber: message.partnumber }, 'partial_result for no pending item of this batch; ignored')
        return NOTHING
      }
      const outcome = message.result.ok
        ? { status: 'DONE' as const, fields: message.result.fields }
        : { status: 'FAILED' as const, error: `AI server sent an unusable result: ${message.result.reason}` }
      await finishItem(pool, job, item.partnumber, outcome, { hash, payload: outcome.status === 'DONE' ? { status: 'done', result: outcome.fields } : { status: 'failed', error: outcome.error } })
      return NOTHING
    }
    case 'failed': {
      const pending = await pendingChunkItems(pool, job.id, job.attempt, chunk)
      const error = message.error?.trim() || 'AI server reported a failure without a reason'
      const text = error.toUpperCase()
      // The longest pending part number the error names (LM358 must not claim "LM358N").
      const named = pending.filter((p) => text.includes(p.partnumber)).sort((a, b) => b.partnumber.length - a.partnumber.length)[0]
      const item = named ?? pending[0]
      if (!item) return NOTHING
      await finishItem(pool, job, item.partnumber, { status: 'FAILED', error }, { hash, payload: { status: 'failed', error } })
      return NOTHING
    }
    case 'done': {
      const won = await closeChunk(pool, job, chunk, 'DONE', NEVER_ANSWERED)
      return { channelEnded: true, finished: won ? { jobId: job.id, kind: 'BATCH', status: 'DONE', reason: 'batch_done' } : undefined }
    }
  }
}

import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import type { AiMessage } from '../ai/messages.js'
import { finishJob, type JobAttempt, type JobEnd } from './job-outcomes.js'
import { applyBatchAnswer, closeChunk, recordBatchActivity } from './batch-outcomes.js'
import { answerOf } from './batch-answers.js'
import { singleJobEvent, type SingleJobEnd } from './single-job-events.js'
import { reviewFor, withNcmCheck } from '../classifications/review-reasons.js'
import { checkOneNcm } from '../ncm/ncm-checks.js'

/**
 * What applying a message did: `channelEnded` when nothing more is expected on it; `finished` when
 * this call ended the job; `outcome` when the message was not applied as such (see the listener's Outcome).
 */
export interface Applied {
  channelEnded: boolean
  finished?: JobEnd
  outcome?: 'kept_unmatched' | 'duplicate' | 'unmatched'
}

/** A single job as its messages need it: the part number asked for, to check the answer against. */
export interface SingleJob extends JobAttempt {
  partnumber: string
}

/** Applied, and nothing more: the channel goes on, no job ended. */
export const NOTHING: Applied = { channelEnded: false }

/** A single job's message other than progress (which the listener hands to its ProgressWriter). */
export async function applySingleMessage(pool: pg.Pool, job: SingleJob, message: SingleJobEnd, hash: Buffer, log: FastifyBaseLogger): Promise<Applied> {
  const event = singleJobEvent(message)
  switch (event.type) {
    case 'ignored':
      log.warn({ jobId: job.id, reason: event.reason }, 'AI message ignored')
      return NOTHING
    case 'done':
    case 'failed': {
      // A result for another part number, or whose NCM code is not a VALID one of the official
      // table, is stored for review, never accepted. The check is read before finish_job's one statement.
      const outcome = event.type === 'done'
        ? {
            status: 'DONE' as const,
            fields: event.fields,
            review: withNcmCheck(reviewFor(job.partnumber, event.fields.partnumber), await checkOneNcm(pool, event.fields.ncm)),
          }
        : { status: 'FAILED' as const, error: event.error }
      const payload = event.type === 'done' ? { status: 'done', result: event.fields } : { status: 'failed', error: event.error }
      const won = await finishJob(pool, job, outcome, { hash, payload: { ...payload, ai_job_id: message.jobId } })
      const reason = event.type === 'done' ? 'ai_result' : message.status === 'done' ? 'invalid_result' : 'ai_failed'
      return { channelEnded: true, finished: won ? { jobId: job.id, kind: 'SINGLE', status: outcome.status, reason } : undefined }
    }
  }
}

/**
 * A late answer on the channel of a single job that has ended: a result revives a job failed by
 * its deadline, and a trusted result replaces one that waits for review (finish_job decides);
 * anything else, or a job that ended otherwise, changes nothing.
 */
export async function applyLateSingleMessage(pool: pg.Pool, job: SingleJob, message: SingleJobEnd, hash: Buffer, log: FastifyBaseLogger): Promise<Applied | undefined> {
  const event = singleJobEvent(message)
  if (event.type !== 'done') return undefined
  const applied = await applySingleMessage(pool, job, message, hash, log)
  return applied.finished ? { ...applied, finished: { ...applied.finished, reason: 'late_answer' } } : undefined
}

export const NEVER_ANSWERED = 'The AI server finished the batch without answering this part number'

/**
 * One message of a batch chunk. An answer (`partial_result`, `failed`, a `done` with a result) goes
 * to the item it is for (applyBatchAnswer); a `done` without a result closes the chunk, failing what
 * it left unanswered; progress keeps the batch alive.
 */
export async function applyBatchMessage(pool: pg.Pool, job: JobAttempt, chunk: number, message: AiMessage, hash: Buffer, log: FastifyBaseLogger): Promise<Applied> {
  if (message.status === 'processing') {
    await recordBatchActivity(pool, job, message.progress, hash, { status: 'processing', progress: message.progress, ai_job_id: message.jobId })
    return NOTHING
  }
  const answer = answerOf(message)
  const batchDone = (won: boolean): JobEnd | undefined => (won ? { jobId: job.id, kind: 'BATCH', status: 'DONE', reason: 'batch_done' } : undefined)
  if (!answer) return { channelEnded: false, finished: batchDone(await closeChunk(pool, job, chunk, 'DONE', NEVER_ANSWERED)) }
  const applied = await applyBatchAnswer(pool, job, chunk, answer, hash)
  switch (applied.effect) {
    case 'item':
      return { channelEnded: false, finished: batchDone(applied.finished) }
    case 'unmatched':
      log.warn({ jobId: job.id, chunk, status: message.status, partnumber: answer.named }, 'AI answer that no item of the batch could take; kept on the job')
      return { channelEnded: false, outcome: 'kept_unmatched' }
    case 'duplicate':
      return { channelEnded: false, outcome: 'duplicate' }
    case 'no_job':
      return { channelEnded: false, outcome: 'unmatched' }
  }
}

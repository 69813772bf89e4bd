import type pg from 'pg'
import { inTransaction, type Queryable } from '../../db/queryable.js'
import type { ClassificationFields } from '../ai/classification-result.js'
import type { Progress } from '../ai/messages.js'
import { decideClassification, storeClassification } from '../classifications/classifications-store.js'
import { reviewFor, withNcmCheck, type Review } from '../classifications/review-reasons.js'
import { checkOneNcm } from '../ncm/ncm-checks.js'
import type { NcmCheck } from '../ncm/ncm-check.js'
import { failPendingItems, type JobAttempt } from './job-outcomes.js'
import { candidateNames, failureOf, matchAnswer, type AnswerableItem, type BatchAnswer, type MatchedBy } from './batch-answers.js'

// The writes that move a batch job and its items; guarded and idempotent like those of single jobs.

const LIVE = `status IN ('QUEUED', 'RUNNING')`

/** A batch's progress message: stored once, keeps the job alive; the counters come from its items. */
export async function recordBatchActivity(db: Queryable, job: JobAttempt, progress: Progress, hash: Buffer, payload: object): Promise<void> {
  await db.query(
    `WITH event AS (
       INSERT INTO job_events (job_id, attempt, type, payload, message_hash)
       SELECT $1, $2, 'progress', $3, $4 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND attempt = $2 AND ${LIVE})
       ON CONFLICT (job_id, attempt, message_hash) DO NOTHING RETURNING 1)
     UPDATE jobs SET status = 'RUNNING', progress_message = $5, last_activity_at = now(), updated_at = now()
      WHERE id = $1 AND attempt = $2 AND ${LIVE} AND EXISTS (SELECT 1 FROM event)`,
    [job.id, job.attempt, payload, hash, progress.message],
  )
}

/** What an answer did to its batch. */
export type AnswerEffect =
  /** It gave its item a result or a failure. */
  | 'item'
  /** No item could take it: kept on the job (job_unmatched_answers). */
  | 'unmatched'
  /** Seen before (another instance applied it, or its item holds this very result already). */
  | 'duplicate'
  /** The job is gone. */
  | 'no_job'

export interface AnswerApplied {
  effect: AnswerEffect
  /** How the answer found its item. */
  matchedBy?: MatchedBy
  /** This call finished the batch, or changed it after it had finished (its task_results message is due again). */
  finished: boolean
}

interface ItemRow extends AnswerableItem {
  classification_id: string | null
  /** Failed without an answer of the AI server (deadline, chunk ended): an answer takes its place. */
  no_answer: boolean
  answered_ncm: string | null
  /** Its result waits for review only because it was attributed by order. */
  attributed_by_order: boolean
}

/**
 * Applies one answer of the AI server to its batch, whatever the batch's state: matched to an item
 * (batch-answers.ts), it gives a waiting or failed item its result (a late answer revives an item
 * failed by the deadline or never answered), fails a waiting item, or, when no item can take it,
 * is kept on the job. A batch that had finished and gets a new result is DONE again, and due a new
 * task_results message. Idempotent: a message applied before (by any instance) changes nothing.
 */
export async function applyBatchAnswer(pool: pg.Pool, job: JobAttempt, chunk: number, answer: BatchAnswer, hash: Buffer): Promise<AnswerApplied> {
  // The result's NCM check, read before the transaction (it holds the batch's lock).
  const check = answer.kind === 'result' && answer.result.ok ? await checkOneNcm(pool, answer.result.fields.ncm) : null
  return inTransaction(pool, async (client) => {
    // The job row is the batch's lock: answers to one batch are applied one at a time, whoever applies them.
    const locked = await client.query('SELECT status, attempt FROM jobs WHERE id = $1 FOR UPDATE', [job.id])
    if (!locked.rowCount) return { effect: 'no_job', finished: false }
    const seen = await client.query(
      `SELECT 1 FROM job_events WHERE job_id = $1 AND attempt = $2 AND message_hash = $3
       UNION ALL SELECT 1 FROM job_unmatched_answers WHERE job_id = $1 AND message_hash = $3`,
      [job.id, job.attempt, hash],
    )
    if (seen.rowCount) return { effect: 'duplicate', finished: false }
    // The items the answer can be for: its chunk's, and any other the answer names (read by key, so
    // an answer costs the same in a batch of ten items or of ten thousand).
    const { rows: items } = await client.query<ItemRow>(
      `SELECT i.partnumber, i.position, i.status, ch.chunk, i.classification_id, i.no_answer, c.ncm AS answered_ncm,
              c.status = 'PENDING' AND c.review_reasons = '{attributed_by_order}' AS attributed_by_order FROM job_items i
         LEFT JOIN job_chunks ch ON ch.job_id = i.job_id AND ch.attempt = $2 AND i.partnumber = ANY(ch.partnumbers)
         LEFT JOIN classifications c ON c.id = i.classification_id
        WHERE i.job_id = $1
          AND i.partnumber = ANY(coalesce((SELECT partnumbers FROM job_chunks WHERE job_id = $1 AND attempt = $2 AND chunk = $3), '{}') || $4::text[])`,
      [job.id, job.attempt, chunk, candidateNames(answer)],
    )
    const match = matchAnswer(answer, items, chunk)
    if (!match) return keepUnmatched(client, job, answer, hash, 'no_item')
    const { item, by } = match
    const change = itemChange(item, answer, by, check)
    if (change === 'duplicate') return { effect: 'duplicate', matchedBy: by, finished: false }
    if (change === 'confirmed') {
      await acceptConfirmed(client, item.classification_id!)
      return { effect: 'item', matchedBy: by, finished: false }
    }
    if (change === 'keep') return keepUnmatched(client, job, answer, hash, 'item_answered', item.partnumber)
    if (change.status === 'DONE') {
      const classificationId = await storeClassification(client, job.id, item.partnumber, change.fields, change.review)
      await client.query(
        `UPDATE job_items SET status = 'DONE', source = 'AI', classification_id = $3, error = NULL, no_answer = false, finished_at = now(), finish_order = nextval('job_items_finish_order')
          WHERE job_id = $1 AND partnumber = $2`,
        [job.id, item.partnumber, classificationId],
      )
    } else {
      await client.query(
        `UPDATE job_items SET status = 'FAILED', error = $3, no_answer = false, finished_at = now(), finish_order = nextval('job_items_finish_order')
          WHERE job_id = $1 AND partnumber = $2`,
        [job.id, item.partnumber, change.error],
      )
    }
    const payload = change.status === 'DONE' ? { status: 'done', result: change.fields } : { status: 'failed', error: change.error }
    await client.query(
      `INSERT INTO job_events (job_id, attempt, type, payload, message_hash) VALUES ($1, $2, 'item', $3, $4)`,
      [job.id, job.attempt, { partnumber: item.partnumber, matched_by: by, ...payload }, hash],
    )
    await updateCounters(client, job.id)
    const live = locked.rows[0].status === 'QUEUED' || locked.rows[0].status === 'RUNNING'
    if (live) return { effect: 'item', matchedBy: by, finished: await closeAnsweredChunks(client, { id: job.id, attempt: locked.rows[0].attempt }, item.partnumber) }
    await reopenFinishedBatch(client, { id: job.id, attempt: locked.rows[0].attempt })
    return { effect: 'item', matchedBy: by, finished: true }
  })
}

type ItemChange =
  | { status: 'DONE'; fields: ClassificationFields; review: Review }
  | { status: 'FAILED'; error: string }
  | 'duplicate'
  /** The same result, now naming its item: the one attributed by order is trusted after all. */
  | 'confirmed'
  /** The item has its answer: this other one is kept apart. */
  | 'keep'

/**
 * What an answer does to the item it matched: a result beats a failure; a failure fails an item
 * still waiting, or takes the place of one that failed without an answer (the deadline's).
 */
function itemChange(item: ItemRow, answer: BatchAnswer, by: MatchedBy, check: NcmCheck | null): ItemChange {
  if (answer.kind === 'result' && answer.result.ok) {
    const { fields } = answer.result
    if (item.status !== 'DONE') return { status: 'DONE', fields, review: withNcmCheck(reviewFor(item.partnumber, answer.named, by === 'order'), check) }
    if (item.answered_ncm !== fields.ncm) return 'keep'
    return item.attributed_by_order && by !== 'order' && reviewFor(item.partnumber, answer.named).reasons.length === 0 ? 'confirmed' : 'duplicate'
  }
  if (item.status === 'DONE' || (item.status === 'FAILED' && !item.no_answer)) return 'keep'
  return { status: 'FAILED', error: failureOf(answer)! }
}

/** Within the caller's transaction: a result attributed by order that a later answer named is accepted as any trusted result is. */
async function acceptConfirmed(client: pg.PoolClient, classificationId: string): Promise<void> {
  // The part number's row is the lock under which its accepted classification changes (as in store_classification).
  const { rows } = await client.query(
    'SELECT p.id FROM partnumbers p JOIN classifications c ON c.partnumber_id = p.id WHERE c.id = $1 FOR UPDATE OF p', [classificationId])
  await decideClassification(client, classificationId, rows[0].id, 'ACTIVE', null)
}

async function keepUnmatched(client: pg.PoolClient, job: JobAttempt, answer: BatchAnswer, hash: Buffer, reason: 'no_item' | 'item_answered', partnumber?: string): Promise<AnswerApplied> {
  const result = answer.kind === 'result' && answer.result.ok ? answer.result.fields : null
  const error = failureOf(answer)
  await client.query(
    `INSERT INTO job_unmatched_answers (job_id, attempt, reason, partnumber, result, error, message, message_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (job_id, message_hash) DO NOTHING`,
    [job.id, job.attempt, reason, partnumber ?? answer.named, result, error, answer.text, hash],
  )
  return { effect: 'unmatched', finished: false }
}

async function updateCounters(db: Queryable, jobId: string): Promise<void> {
  await db.query(
    `UPDATE jobs SET last_activity_at = now(), updated_at = now(),
            status = CASE WHEN status = 'QUEUED' THEN 'RUNNING' ELSE status END,
            progress_current = (SELECT count(*) FROM job_items WHERE job_id = $1 AND status <> 'PENDING'),
            progress_total = (SELECT count(*) FROM job_items WHERE job_id = $1)
      WHERE id = $1`,
    [jobId],
  )
}

/** Within the caller's transaction: the live batch's chunk of the item just answered is done once all its items are, and so is the batch when none is left. */
async function closeAnsweredChunks(client: pg.PoolClient, job: JobAttempt, answeredPartnumber: string): Promise<boolean> {
  await client.query(
    `UPDATE job_chunks c SET status = 'DONE' WHERE c.job_id = $1 AND c.attempt = $2 AND c.status = 'RUNNING' AND $3 = ANY(c.partnumbers)
        AND NOT EXISTS (SELECT 1 FROM job_items i WHERE i.job_id = $1 AND i.status = 'PENDING' AND i.partnumber = ANY(c.partnumbers))`,
    [job.id, job.attempt, answeredPartnumber],
  )
  return finishBatchIfComplete(client, job)
}

/**
 * Within the caller's transaction: a finished batch (DONE, or FAILED by its deadline) that an
 * answer changed is DONE, with a fresh final event; its task_results message is due again.
 */
async function reopenFinishedBatch(client: pg.PoolClient, job: JobAttempt): Promise<void> {
  const counts = await itemCounts(client, job.id)
  await client.query(
    `UPDATE jobs SET status = 'DONE', error = NULL, timed_out = false, finished_at = now(), result_published_at = NULL, progress_message = $3
      WHERE id = $1 AND attempt = $2`,
    [job.id, job.attempt, batchSummary(counts)],
  )
  await client.query('UPDATE job_events SET final = false WHERE job_id = $1 AND attempt = $2 AND final', [job.id, job.attempt])
  await client.query(
    `INSERT INTO job_events (job_id, attempt, type, payload, final) VALUES ($1, $2, 'done', $3, true)`,
    [job.id, job.attempt, { status: 'done', ...counts, late_answer: true }],
  )
}

async function itemCounts(client: pg.PoolClient, jobId: string): Promise<{ done: number; failed: number }> {
  const { rows } = await client.query(
    `SELECT count(*) FILTER (WHERE status = 'DONE')::int AS done, count(*) FILTER (WHERE status = 'FAILED')::int AS failed FROM job_items WHERE job_id = $1`,
    [jobId],
  )
  return rows[0]
}

/** The gateway's own last word on a finished batch (the AI server's last progress text is stale by then). */
export function batchSummary(counts: { done: number; failed: number }): string {
  const total = counts.done + counts.failed
  return `${total} of ${total} answered: ${counts.done} classified, ${counts.failed} failed`
}

/**
 * A chunk ended (`done` from the AI server, or it never started): its unanswered items fail with
 * `reason`, and when no chunk is left running the batch is done. Returns true to the caller that
 * finished the batch (it then publishes task_results).
 */
export async function closeChunk(pool: pg.Pool, job: JobAttempt, chunk: number, status: 'DONE' | 'FAILED', reason: string): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    const live = await client.query(`SELECT 1 FROM jobs WHERE id = $1 AND attempt = $2 AND ${LIVE} FOR UPDATE`, [job.id, job.attempt])
    if (!live.rowCount) return false
    const closed = await client.query(
      `UPDATE job_chunks SET status = $4, error = CASE WHEN $4 = 'FAILED' THEN $5 END
        WHERE job_id = $1 AND attempt = $2 AND chunk = $3 AND status = 'RUNNING' RETURNING partnumbers`,
      [job.id, job.attempt, chunk, status, reason],
    )
    if (!closed.rowCount) return false
    await failPendingItems(client, job.id, reason, closed.rows[0].partnumbers)
    await updateCounters(client, job.id)
    return finishBatchIfComplete(client, job)
  })
}

/** Within the caller's transaction: marks the batch done when nothing is left running or pending. */
export async function finishBatchIfComplete(client: pg.PoolClient, job: JobAttempt): Promise<boolean> {
  const { rowCount } = await client.query(
    `SELECT 1 FROM jobs WHERE id = $1 AND attempt = $2 AND ${LIVE}
        AND NOT EXISTS (SELECT 1 FROM job_chunks WHERE job_id = $1 AND attempt = $2 AND status = 'RUNNING')
        AND NOT EXISTS (SELECT 1 FROM job_items WHERE job_id = $1 AND status = 'PENDING')`,
    [job.id, job.attempt],
  )
  if (!rowCount) return false
  const counts = await itemCounts(client, job.id)
  await client.query(
    `UPDATE jobs SET status = 'DONE', progress_message = $3, finished_at = now(), updated_at = now(), last_activity_at = now() WHERE id = $1 AND attempt = $2`,
    [job.id, job.attempt, batchSummary(counts)],
  )
  await client.query(
    `INSERT INTO job_events (job_id, attempt, type, payload, final) VALUES ($1, $2, 'done', $3, true)`,
    [job.id, job.attempt, { status: 'done', ...counts }],
  )
  return true
}

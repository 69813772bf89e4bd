import type pg from 'pg'
import { inTransaction, type Queryable } from '../../db/queryable.js'
import type { ClassificationFields } from '../ai/classification-result.js'
import type { Progress } from '../ai/messages.js'
import { storeClassification } from '../classifications/classifications-store.js'
import { TRUSTED } from '../classifications/review-reasons.js'
import { failPendingItems, type JobAttempt } from './job-outcomes.js'

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

export type ItemOutcome = { status: 'DONE'; fields: ClassificationFields } | { status: 'FAILED'; error: string }

/** Finishes one item of a live batch; false when it had already finished (or the batch had). */
export async function finishItem(pool: pg.Pool, job: JobAttempt, partnumber: string, outcome: ItemOutcome, event: { hash: Buffer; payload: object }): Promise<boolean> {
  return inTransaction(pool, async (client) => {
    // The job row is the batch's lock: items of one batch are written one at a time, whoever writes them.
    const live = await client.query(`SELECT 1 FROM jobs WHERE id = $1 AND attempt = $2 AND ${LIVE} FOR UPDATE`, [job.id, job.attempt])
    if (!live.rowCount) return false
    const pending = await client.query(`SELECT 1 FROM job_items WHERE job_id = $1 AND partnumber = $2 AND status = 'PENDING'`, [job.id, partnumber])
    if (!pending.rowCount) return false
    if (outcome.status === 'DONE') {
      const classificationId = await storeClassification(client, job.id, partnumber, outcome.fields, TRUSTED)
      await client.query(
        `UPDATE job_items SET status = 'DONE', source = 'AI', classification_id = $3, finished_at = now(), finish_order = nextval('job_items_finish_order')
          WHERE job_id = $1 AND partnumber = $2`,
        [job.id, partnumber, classificationId],
      )
    } else {
      await failPendingItems(client, job.id, outcome.error, [partnumber])
    }
    await client.query(
      `INSERT INTO job_events (job_id, attempt, type, payload, message_hash) VALUES ($1, $2, 'item', $3, $4)
       ON CONFLICT (job_id, attempt, message_hash) DO NOTHING`,
      [job.id, job.attempt, { partnumber, ...event.payload }, event.hash],
    )
    await updateCounters(client, job)
    return true
  })
}

async function updateCounters(db: Queryable, job: JobAttempt): Promise<void> {
  await db.query(
    `UPDATE jobs SET status = 'RUNNING', last_activity_at = now(), updated_at = now(),
            progress_current = (SELECT count(*) FROM job_items WHERE job_id = $1 AND status <> 'PENDING'),
            progress_total = (SELECT count(*) FROM job_items WHERE job_id = $1)
      WHERE id = $1 AND attempt = $2 AND ${LIVE}`,
    [job.id, job.attempt],
  )
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
    await updateCounters(client, job)
    return finishBatchIfComplete(client, job)
  })
}

/** Within the caller's transaction: marks the batch done when nothing is left running or pending. */
export async function finishBatchIfComplete(client: pg.PoolClient, job: JobAttempt): Promise<boolean> {
  const { rows } = await client.query(
    `UPDATE jobs SET status = 'DONE', finished_at = now(), updated_at = now(), last_activity_at = now()
      WHERE id = $1 AND attempt = $2 AND ${LIVE}
        AND NOT EXISTS (SELECT 1 FROM job_chunks WHERE job_id = $1 AND attempt = $2 AND status = 'RUNNING')
        AND NOT EXISTS (SELECT 1 FROM job_items WHERE job_id = $1 AND status = 'PENDING')
      RETURNING (SELECT count(*)::int FROM job_items WHERE job_id = $1 AND status = 'DONE') AS done,
                (SELECT count(*)::int FROM job_items WHERE job_id = $1 AND status = 'FAILED') AS failed`,
    [job.id, job.attempt],
  )
  if (!rows[0]) return false
  await client.query(
    `INSERT INTO job_events (job_id, attempt, type, payload, final) VALUES ($1, $2, 'done', $3, true)`,
    [job.id, job.attempt, { status: 'done', done: rows[0].done, failed: rows[0].failed }],
  )
  return true
}

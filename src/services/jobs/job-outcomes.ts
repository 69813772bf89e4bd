import type pg from 'pg'
import type { Queryable } from '../../db/queryable.js'
import type { ClassificationFields } from '../ai/classification-result.js'
import { classificationArguments } from '../classifications/classifications-store.js'
import type { Review } from '../classifications/review-reasons.js'
import type { Progress } from '../ai/messages.js'

// The writes that move a job. Each is idempotent and guarded by the job's status and attempt,
// so any number of gateway instances may apply the same message: one of them changes the job.

/** A job this instance ended, for task_results and metrics. */
export interface JobEnd {
  jobId: string
  kind: 'SINGLE' | 'BATCH'
  status: 'DONE' | 'FAILED'
  /** Why, in one word: ai_result, ai_failed, invalid_result, ai_start, deadline, deadline_bus_down, history, batch_done, late_answer. */
  reason: string
}

export interface JobAttempt {
  id: string
  attempt: number
}

/** A stored progress event: the message as the AI server sent it; its `progress` is what the job moves to. */
export interface ProgressPayload {
  progress: Progress
  [field: string]: unknown
}

/** Stores a progress message once and moves the job's latest progress forward (never backward). */
export async function recordProgress(db: Queryable, job: JobAttempt, hash: Buffer, payload: ProgressPayload): Promise<void> {
  const { progress } = payload
  await db.query(
    `WITH event AS (
       INSERT INTO job_events (job_id, attempt, type, payload, message_hash)
       SELECT $1, $2, 'progress', $3, $4
        WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND attempt = $2 AND status IN ('QUEUED', 'RUNNING'))
       ON CONFLICT (job_id, attempt, message_hash) DO NOTHING
       RETURNING 1)
     UPDATE jobs SET
       status = 'RUNNING',
       progress_current = CASE WHEN progress_current IS NULL OR $5 >= progress_current THEN $5 ELSE progress_current END,
       progress_total   = CASE WHEN progress_current IS NULL OR $5 >= progress_current THEN $6 ELSE progress_total END,
       progress_message = CASE WHEN progress_current IS NULL OR $5 >= progress_current THEN $7 ELSE progress_message END,
       last_activity_at = now(), updated_at = now()
     WHERE id = $1 AND attempt = $2 AND status IN ('QUEUED', 'RUNNING') AND EXISTS (SELECT 1 FROM event)`,
    [job.id, job.attempt, payload, hash, progress.current, progress.total, progress.message],
  )
}

export type FinalOutcome =
  | { status: 'DONE'; fields: ClassificationFields; review: Review }
  | { status: 'FAILED'; error: string; /** failed by the gateway's deadline: a late answer may revive it */ byDeadline?: boolean }

/**
 * Ends a job: its final status, its classification when it succeeded, and its one final audit event,
 * in one statement (finish_job). A single job failed by its deadline is revived by a result (it
 * becomes DONE; its task_results message is due again). Returns false when the job had ended
 * already (another instance won) and was not revived.
 */
export async function finishJob(db: Queryable, job: JobAttempt, outcome: FinalOutcome, event: { hash: Buffer | null; payload: object }): Promise<boolean> {
  const done = outcome.status === 'DONE'
  const { rows } = await db.query(
    { name: 'finish-job', text: 'SELECT finish_job($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) AS ended' },
    [job.id, job.attempt, outcome.status, done ? null : outcome.error, !done && outcome.byDeadline === true,
      ...classificationArguments(done ? outcome.fields : null, done ? outcome.review : null), event.payload, event.hash],
  )
  return rows[0].ended
}

export async function failPendingItems(db: Queryable, jobId: string, error: string, partnumbers?: string[]): Promise<void> {
  await db.query(
    `UPDATE job_items SET status = 'FAILED', error = $2, no_answer = true, finished_at = now(), finish_order = nextval('job_items_finish_order')
      WHERE job_id = $1 AND status = 'PENDING' AND ($3::text[] IS NULL OR partnumber = ANY($3))`,
    [jobId, error, partnumbers ?? null],
  )
}

/** A job the sweeper ended, with the reason it was given. */
export type SilentJobEnd = JobAttempt & { channel: string; kind: 'SINGLE' | 'BATCH'; error: string }

/**
 * Jobs silent for longer than the deadline are failed; returns the ones this call ended. The reason
 * may depend on how long the job has been silent (`silentMs`, measured by PostgreSQL's clock).
 */
export async function failSilentJobs(pool: pg.Pool, deadlineMs: number, reason: string | ((silentMs: number) => string)): Promise<SilentJobEnd[]> {
  const { rows } = await pool.query(
    `SELECT id, attempt, channel, kind, (extract(epoch FROM now() - last_activity_at) * 1000)::float8 AS silent_ms FROM jobs
      WHERE status IN ('QUEUED', 'RUNNING') AND last_activity_at < now() - $1 * interval '1 millisecond'
      ORDER BY last_activity_at LIMIT 500`,
    [deadlineMs],
  )
  const ended: SilentJobEnd[] = []
  for (const { silent_ms: silentMs, ...job } of rows) {
    const error = typeof reason === 'string' ? reason : reason(silentMs)
    if (await finishJob(pool, job, { status: 'FAILED', error, byDeadline: true }, { hash: null, payload: { status: 'failed', error, by: 'gateway', timed_out: true } })) {
      ended.push({ ...job, error })
    }
  }
  return ended
}

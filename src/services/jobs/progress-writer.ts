import type pg from 'pg'
import type { Progress } from '../ai/messages.js'
import { isDatabaseBusy, isDatabaseUnavailable } from '../../db/errors.js'
import { recordProgress, type JobAttempt } from './job-outcomes.js'

export interface ProgressWriterOptions {
  pool: pg.Pool
  /** Most messages written by one statement (default 500). */
  maxBatch?: number
  /** Statements in flight at once, so progress never takes more than this many pool connections (default 2). */
  maxConcurrent?: number
}

interface Pending {
  job: JobAttempt
  progress: Progress
  hash: Buffer
  payload: object
  key: string
  resolve: (applied: boolean) => void
  reject: (err: unknown) => void
}

// One statement for many progress messages: each one stored once (the dedup index) if its job is
// still live in that attempt, and each job's latest progress moved forward, never backward. Answers
// each message stored now (by its hash) and each job moved: a message moved its job, as
// recordProgress would have told one by one, when it was stored and its job moved. No join of two
// CTEs' results (PostgreSQL joins those by nested loop, quadratic in the batch): what was stored
// is read back from the INSERT itself, so the statement is linear in the batch for any plan, and
// can be a named statement, planned once per connection.
const BATCH_SQL = `
WITH event AS (
  INSERT INTO job_events (job_id, attempt, type, payload, message_hash)
  SELECT t.job_id, t.attempt, 'progress', t.payload, t.hash
    FROM unnest($1::uuid[], $2::int[], $3::jsonb[], $4::bytea[]) WITH ORDINALITY AS t(job_id, attempt, payload, hash, ord)
   WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.id = t.job_id AND j.attempt = t.attempt AND j.status IN ('QUEUED', 'RUNNING'))
   ORDER BY t.ord
  ON CONFLICT (job_id, attempt, message_hash) DO NOTHING
  RETURNING id, job_id, attempt, message_hash, (payload->'progress'->>'current')::int AS cur,
            (payload->'progress'->>'total')::int AS tot, payload->'progress'->>'message' AS msg
),
furthest AS (
  -- Applied one by one, the furthest message wins (the later one among equals: ids grow in batch order).
  SELECT DISTINCT ON (e.job_id, e.attempt) e.job_id, e.attempt, e.cur, e.tot, e.msg
    FROM event e
   ORDER BY e.job_id, e.attempt, e.cur DESC, e.id DESC
),
moved AS (
  UPDATE jobs j SET
    status = 'RUNNING',
    progress_current = CASE WHEN j.progress_current IS NULL OR f.cur >= j.progress_current THEN f.cur ELSE j.progress_current END,
    progress_total   = CASE WHEN j.progress_current IS NULL OR f.cur >= j.progress_current THEN f.tot ELSE j.progress_total END,
    progress_message = CASE WHEN j.progress_current IS NULL OR f.cur >= j.progress_current THEN f.msg ELSE j.progress_message END,
    last_activity_at = now(), updated_at = now()
    FROM furthest f
   WHERE j.id = f.job_id AND j.attempt = f.attempt AND j.status IN ('QUEUED', 'RUNNING')
  RETURNING j.id, j.attempt
)
SELECT e.job_id, e.attempt, e.message_hash FROM event e
UNION ALL
SELECT m.id, m.attempt, NULL FROM moved m`

const keyOf = (jobId: string, attempt: number, hash: Buffer) => `${jobId}|${attempt}|${hash.toString('base64')}`

/**
 * recordProgress for many messages at once. Messages handed over while a statement runs are
 * written together by the next one, so the database sees one statement per batch instead of one
 * per message, and the listener never holds more than `maxConcurrent` pool connections for
 * progress. Same results as recordProgress, message by message: a caller that awaits each message
 * of a channel before handing the next keeps that channel's order. If a batch fails for a reason
 * other than an unreachable database (one message PostgreSQL refuses), its messages are written
 * one by one, so one bad message fails alone.
 */
export class ProgressWriter {
  private readonly pool: pg.Pool
  private readonly maxBatch: number
  private readonly maxConcurrent: number
  private pending: Pending[] = []
  private running = 0
  private scheduled = false

  constructor(options: ProgressWriterOptions) {
    this.pool = options.pool
    this.maxBatch = options.maxBatch ?? 500
    this.maxConcurrent = options.maxConcurrent ?? 2
  }

  /** As recordProgress: true when this message moved its job (stored now, job still live in that attempt). */
  record(job: JobAttempt, progress: Progress, hash: Buffer, payload: object): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ job, progress, hash, payload, key: keyOf(job.id, job.attempt, hash), resolve, reject })
      this.schedule()
    })
  }

  /** Messages waiting for a statement, and statements running. */
  stats(): { waiting: number; running: number } {
    return { waiting: this.pending.length, running: this.running }
  }

  private schedule() {
    if (this.scheduled || this.running >= this.maxConcurrent) return
    this.scheduled = true
    // Everything handed over in this turn of the event loop goes in the same statement.
    setImmediate(() => {
      this.scheduled = false
      while (this.running < this.maxConcurrent && this.pending.length > 0) {
        const batch = this.pending.splice(0, this.maxBatch)
        this.running++
        void this.write(batch).finally(() => {
          this.running--
          if (this.pending.length > 0) this.schedule()
        })
      }
    })
  }

  private async write(batch: Pending[]): Promise<void> {
    // The same message twice in one batch: the first is stored, the second finds it there.
    const seen = new Set<string>()
    const unique: Pending[] = []
    const repeats: Pending[] = []
    for (const item of batch) {
      if (seen.has(item.key)) repeats.push(item)
      else {
        seen.add(item.key)
        unique.push(item)
      }
    }
    let moved: (item: Pending) => boolean
    try {
      // The payload carries the progress the statement moves the job to (see BATCH_SQL).
      const { rows } = await this.pool.query({ name: 'record-progress-batch', text: BATCH_SQL }, [
        unique.map((i) => i.job.id), unique.map((i) => i.job.attempt), unique.map((i) => ({ ...i.payload, progress: i.progress })), unique.map((i) => i.hash),
      ])
      const stored = new Set<string>()
      const movedJobs = new Set<string>()
      for (const row of rows as Array<{ job_id: string; attempt: number; message_hash: Buffer | null }>) {
        if (row.message_hash) stored.add(keyOf(row.job_id, row.attempt, row.message_hash))
        else movedJobs.add(`${row.job_id}|${row.attempt}`)
      }
      moved = (item) => stored.has(item.key) && movedJobs.has(`${item.job.id}|${item.job.attempt}`)
    } catch (err) {
      if (isDatabaseUnavailable(err) || isDatabaseBusy(err) || batch.length === 1) {
        for (const item of batch) item.reject(err)
        return
      }
      for (const item of batch) {
        await recordProgress(this.pool, item.job, item.progress, item.hash, item.payload).then(item.resolve, item.reject)
      }
      return
    }
    for (const item of unique) item.resolve(moved(item))
    for (const item of repeats) item.resolve(false)
  }
}

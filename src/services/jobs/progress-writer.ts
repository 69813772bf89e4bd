import type pg from 'pg'
import { isDatabaseBusy, isDatabaseUnavailable } from '../../db/errors.js'
import { recordProgress, type JobAttempt, type ProgressPayload } from './job-outcomes.js'

export interface ProgressWriterOptions {
  pool: pg.Pool
  /** Most messages written by one statement (default 500). */
  maxBatch?: number
  /** Statements in flight at once, so progress never takes more than this many pool connections (default 2). */
  maxConcurrent?: number
  /**
   * How long the first message waits for others to join its statement (default 10 ms). Nobody
   * waits for a progress write to see progress (streams get it before it is written), so a few
   * milliseconds buy far fewer, larger statements: less CPU in the gateway and in PostgreSQL.
   */
  gatherMs?: number
}

/** Called once a message is stored (or found stored already, or its job no longer live in that attempt), or with what kept it from being stored. */
export type Written = (err?: unknown) => void

interface Pending {
  job: JobAttempt
  hash: Buffer
  payload: ProgressPayload
  written: Written
}

// One statement for many progress messages: each one stored once (the dedup index) if its job is
// still live in that attempt, and each job's latest progress moved forward, never backward, as
// recordProgress does message by message. The messages come as one JSON array of
// [job id, attempt, hash in hex, payload], one parameter whatever their number (an array parameter
// per column cost more to serialize than the statement took to run), sent as UTF-8 bytes: as a
// string, pg flattened it into one large heap string kept until the statement ended, and the
// scavenges that fell meanwhile moved it to the old generation, a third of what the push path
// left there for the major collections (bench/README.md). No join of two CTEs' results
// (PostgreSQL joins those by nested loop, quadratic in the batch): what was stored is read back
// from the INSERT itself. Named, so it is planned once per connection.
const BATCH_SQL = `
WITH message AS (
  SELECT (m->>0)::uuid AS job_id, (m->>1)::int AS attempt, decode(m->>2, 'hex') AS hash, m->3 AS payload, ord
    FROM jsonb_array_elements(convert_from($1, 'UTF8')::jsonb) WITH ORDINALITY AS t(m, ord)
),
event AS (
  INSERT INTO job_events (job_id, attempt, type, payload, message_hash)
  SELECT m.job_id, m.attempt, 'progress', m.payload, m.hash
    FROM message m
   -- A scalar subquery, so that it is always one primary-key lookup per message: as EXISTS,
   -- PostgreSQL may hash every live job for each statement (10,000 of them: 6 of 9 ms for 50 messages).
   WHERE (SELECT j.status FROM jobs j WHERE j.id = m.job_id AND j.attempt = m.attempt) IN ('QUEUED', 'RUNNING')
   ORDER BY m.ord
  ON CONFLICT (job_id, attempt, message_hash) DO NOTHING
  RETURNING id, job_id, attempt, (payload->'progress'->>'current')::int AS cur,
            (payload->'progress'->>'total')::int AS tot, payload->'progress'->>'message' AS msg
),
furthest AS (
  -- Applied one by one, the furthest message wins (the later one among equals: ids grow in batch order).
  SELECT DISTINCT ON (e.job_id, e.attempt) e.job_id, e.attempt, e.cur, e.tot, e.msg
    FROM event e
   ORDER BY e.job_id, e.attempt, e.cur DESC, e.id DESC
)
UPDATE jobs j SET
  status = 'RUNNING',
  progress_current = CASE WHEN j.progress_current IS NULL OR f.cur >= j.progress_current THEN f.cur ELSE j.progress_current END,
  progress_total   = CASE WHEN j.progress_current IS NULL OR f.cur >= j.progress_current THEN f.tot ELSE j.progress_total END,
  progress_message = CASE WHEN j.progress_current IS NULL OR f.cur >= j.progress_current THEN f.msg ELSE j.progress_message END,
  last_activity_at = now(), updated_at = now()
  FROM furthest f
 WHERE j.id = f.job_id AND j.attempt = f.attempt AND j.status IN ('QUEUED', 'RUNNING')`

/**
 * recordProgress for many messages at once. Messages handed over within `gatherMs` of each other,
 * or while statements run, are written together, so the database sees one statement per batch
 * instead of one per message, and the listener never holds more than `maxConcurrent` pool
 * connections for progress. Writes as recordProgress does, message by message: a caller that waits for
 * each message of a channel before handing the next keeps that channel's order. If a batch fails for
 * a reason other than an unreachable or busy database (one message PostgreSQL refuses), its messages
 * are written one by one, so one bad message fails alone.
 */
export class ProgressWriter {
  private readonly pool: pg.Pool
  private readonly maxBatch: number
  private readonly maxConcurrent: number
  private readonly gatherMs: number
  private pending: Pending[] = []
  private running = 0
  private gathering: NodeJS.Timeout | undefined

  constructor(options: ProgressWriterOptions) {
    this.pool = options.pool
    this.maxBatch = options.maxBatch ?? 500
    this.maxConcurrent = options.maxConcurrent ?? 2
    this.gatherMs = options.gatherMs ?? 10
  }

  /**
   * Hands one message over; `written` is called once, never before this returns. A callback, not a
   * promise: this is every progress message's way, thousands a second, and each promise (with
   * the closures around it) is garbage to collect while the streams wait.
   */
  record(job: JobAttempt, hash: Buffer, payload: ProgressPayload, written: Written): void {
    this.pending.push({ job, hash, payload, written })
    this.schedule()
  }

  /** Messages waiting for a statement, and statements running. */
  stats(): { waiting: number; running: number } {
    return { waiting: this.pending.length, running: this.running }
  }

  /** The first message to wait starts the gathering; messages that waited for a running statement go as soon as it ends. */
  private schedule() {
    if (this.gathering || this.running >= this.maxConcurrent) return
    this.gathering = setTimeout(() => {
      this.gathering = undefined
      this.flush()
    }, this.gatherMs)
  }

  private flush() {
    while (this.running < this.maxConcurrent && this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch)
      this.running++
      void this.write(batch).finally(() => {
        this.running--
        if (!this.gathering) this.flush()
      })
    }
  }

  private async write(batch: Pending[]): Promise<void> {
    try {
      const messages = batch.map((item) => [item.job.id, item.job.attempt, item.hash.toString('hex'), item.payload])
      await this.pool.query({ name: 'record-progress-batch', text: BATCH_SQL }, [Buffer.from(JSON.stringify(messages))])
    } catch (err) {
      if (isDatabaseUnavailable(err) || isDatabaseBusy(err) || batch.length === 1) {
        for (const item of batch) item.written(err)
        return
      }
      for (const item of batch) {
        await recordProgress(this.pool, item.job, item.hash, item.payload).then(() => item.written(), item.written)
      }
      return
    }
    for (const item of batch) item.written()
  }
}

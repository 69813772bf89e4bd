import type { Queryable } from '../../db/queryable.js'
import { toClassificationView, type ClassificationView } from '../classifications/classifications-store.js'
import { checkNcms, type NcmChecks } from '../ncm/ncm-checks.js'
import { countItems, listItems, listUnmatchedAnswers, type BatchCounts, type BatchItemView, type UnmatchedAnswerView } from './batch-store.js'

export type JobKind = 'SINGLE' | 'BATCH'
export type JobStatus = 'QUEUED' | 'RUNNING' | 'DONE' | 'FAILED'
export const TERMINAL_STATUSES: readonly JobStatus[] = ['DONE', 'FAILED']
export const isTerminal = (status: JobStatus) => status === 'DONE' || status === 'FAILED'

export interface JobInput {
  description: string | null
  manufacturer: string | null
  supplier: string | null
}

export interface JobRecord {
  id: string
  kind: JobKind
  owner_id: string
  status: JobStatus
  source: 'AI' | 'HISTORY'
  partnumber: string | null
  input: JobInput
  channel: string
  attempt: number
  ai_job_id: string | null
  progress_current: number | null
  progress_total: number | null
  progress_message: string | null
  error: string | null
  timed_out: boolean
  classification_id: string | null
  document_id: string | null
  created_at: Date
  updated_at: Date
  last_activity_at: Date
  finished_at: Date | null
}

/** What clients see of a job: in responses, in the stream's snapshot, in the history. */
export interface JobView {
  id: string
  kind: JobKind
  status: JobStatus
  source: 'AI' | 'HISTORY'
  partnumber: string | null
  input: JobInput
  progress: { current: number; total: number; message: string | null } | null
  error: string | null
  /** FAILED by the gateway's deadline (no word from the AI server): a late answer may still turn it DONE. */
  timed_out: boolean
  result: ClassificationView | null
  attempt: number
  owner_id: string
  document_id: string | null
  /** Batch jobs, when asked for one job: every item and the counts. */
  items?: BatchItemView[]
  counts?: BatchCounts
  /** Batch jobs, when asked for one job: the AI server's answers that no item could take. */
  unmatched_answers?: UnmatchedAnswerView[]
  created_at: Date
  updated_at: Date
  /** When the AI server (or the gateway) last moved the job: how long it has been quiet. */
  last_activity_at: Date
  finished_at: Date | null
}

const JOB_COLUMNS = `j.id, j.kind, j.owner_id, j.status, j.source, j.partnumber, j.input, j.channel, j.attempt, j.ai_job_id,
  j.progress_current, j.progress_total, j.progress_message, j.error, j.timed_out, j.classification_id, j.document_id, j.created_at, j.updated_at,
  j.last_activity_at, j.finished_at`

export function toJobView(job: JobRecord, result: ClassificationView | null): JobView {
  return {
    id: job.id,
    kind: job.kind,
    status: job.status,
    source: job.source,
    partnumber: job.partnumber,
    input: job.input,
    progress: job.progress_total === null ? null : { current: job.progress_current ?? 0, total: job.progress_total, message: job.progress_message },
    error: job.error,
    timed_out: job.timed_out,
    result,
    attempt: job.attempt,
    owner_id: job.owner_id,
    document_id: job.document_id,
    created_at: job.created_at,
    updated_at: job.updated_at,
    last_activity_at: job.last_activity_at,
    finished_at: job.finished_at,
  }
}

export async function getJobRecord(db: Queryable, id: string): Promise<JobRecord | undefined> {
  const { rows } = await db.query(`SELECT ${JOB_COLUMNS} FROM jobs j WHERE j.id = $1`, [id])
  return rows[0]
}

/** Jobs by id, many in one query (see BatchLoader). */
export async function getJobRecords(db: Queryable, ids: string[]): Promise<Map<string, JobRecord>> {
  const { rows } = await db.query({ name: 'jobs-by-ids', text: `SELECT ${JOB_COLUMNS} FROM jobs j WHERE j.id = ANY($1::uuid[])` }, [ids])
  return new Map(rows.map((row: JobRecord) => [row.id, row]))
}

/** The job a progress channel belongs to: a job's own channel, or one of a batch's chunks (with that chunk's attempt). */
export interface ChannelJob {
  id: string
  kind: JobKind
  partnumber: string | null
  status: JobStatus
  attempt: number
  chunk: { number: number; attempt: number } | null
}

/** The jobs of many channels in one query (see BatchLoader); a channel no job has is left out. */
export async function findChannelJobs(db: Queryable, channels: string[]): Promise<Map<string, ChannelJob>> {
  const { rows } = await db.query({
    name: 'jobs-by-channels',
    text: `SELECT j.channel, j.id, j.kind, j.partnumber, j.status, j.attempt, NULL::int AS chunk, NULL::int AS chunk_attempt
             FROM jobs j WHERE j.channel = ANY($1::text[])
           UNION ALL
           SELECT c.channel, j.id, j.kind, j.partnumber, j.status, j.attempt, c.chunk, c.attempt
             FROM job_chunks c JOIN jobs j ON j.id = c.job_id WHERE c.channel = ANY($1::text[])`,
  }, [channels])
  return new Map(rows.map((r) => [r.channel, {
    id: r.id, kind: r.kind, partnumber: r.partnumber, status: r.status, attempt: r.attempt, chunk: r.chunk === null ? null : { number: r.chunk, attempt: r.chunk_attempt },
  }]))
}

// A job's result, read in the same query as the job (columns prefixed result_).
const RESULT_COLUMNS = `c.id AS result_id, p.code AS result_partnumber, c.ncm AS result_ncm, c.ex AS result_ex, c.nve AS result_nve,
  c.description AS result_description, c.confidence AS result_confidence, c.status AS result_status, c.review_reasons AS result_review_reasons,
  c.answered_partnumber AS result_answered_partnumber, c.job_id AS result_job_id,
  c.previous_ncm AS result_previous_ncm, c.corrected_by AS result_corrected_by, c.corrected_at AS result_corrected_at,
  c.created_at AS result_created_at, c.reviewed_at AS result_reviewed_at, m.name AS result_m_name, m.address AS result_m_address,
  m.country AS result_m_country`
const RESULT_JOINS = `LEFT JOIN classifications c ON c.id = j.classification_id
  LEFT JOIN partnumbers p ON p.id = c.partnumber_id
  LEFT JOIN manufacturers m ON m.id = c.manufacturer_id`

/** The checks of the results' codes of rows read with RESULT_COLUMNS. */
function resultChecks(db: Queryable, rows: Array<Record<string, any>>): Promise<NcmChecks> {
  return checkNcms(db, rows.filter((row) => row.result_ncm !== null).map((row) => row.result_ncm))
}

function resultOf(row: Record<string, any>, checks: NcmChecks): ClassificationView | null {
  if (row.result_id === null) return null
  const fields: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(row)) if (key.startsWith('result_')) fields[key.slice('result_'.length)] = value
  return toClassificationView(fields, checks)
}

/** Jobs as clients see them, many in one query (see BatchLoader); a batch's items are read for each batch. */
export async function getJobViews(db: Queryable, ids: string[]): Promise<Map<string, JobView>> {
  const { rows } = await db.query({ name: 'job-views-by-ids', text: `SELECT ${JOB_COLUMNS}, ${RESULT_COLUMNS} FROM jobs j ${RESULT_JOINS} WHERE j.id = ANY($1::uuid[])` }, [ids])
  const checks = await resultChecks(db, rows)
  const views = await Promise.all(rows.map((row) => withBatchItems(db, toJobView(row, resultOf(row, checks)))))
  return new Map(views.map((view) => [view.id, view]))
}

/** A batch job's items, counts and unmatched answers, added to its view (a single job's view is complete already). */
export async function withBatchItems(db: Queryable, view: JobView): Promise<JobView> {
  if (view.kind === 'BATCH') {
    const [items, unmatched] = await Promise.all([listItems(db, view.id), listUnmatchedAnswers(db, view.id)])
    view.items = items
    view.counts = countItems(items)
    view.unmatched_answers = unmatched
  }
  return view
}

/** A job with its result (and a batch's items), as clients see it; undefined when absent. */
export async function getJobView(db: Queryable, id: string): Promise<JobView | undefined> {
  return (await getJobViews(db, [id])).get(id)
}

/**
 * A finished job whose task_results message nobody has claimed yet, claimed in the same statement
 * (result_published_at set); undefined when it is not finished or already claimed. Without a batch's items.
 */
export async function claimFinishedJob(db: Queryable, id: string): Promise<JobView | undefined> {
  const { rows } = await db.query({
    name: 'claim-finished-job-view',
    text: `WITH claimed AS (UPDATE jobs SET result_published_at = now() WHERE id = $1 AND finished_at IS NOT NULL AND result_published_at IS NULL RETURNING id)
           SELECT ${JOB_COLUMNS}, ${RESULT_COLUMNS} FROM jobs j JOIN claimed ON claimed.id = j.id ${RESULT_JOINS} WHERE j.id = $1`,
  }, [id])
  return rows[0] ? toJobView(rows[0], resultOf(rows[0], await resultChecks(db, rows))) : undefined
}

export type NewJob = { ownerId: string; kind: JobKind; partnumber: string | null; input: JobInput; channel: string; source: 'AI' | 'HISTORY'; classificationId?: string; documentId?: string }

/**
 * Inserts a job, in one statement with what the options add: with `maxActive`, only if its owner
 * has fewer live jobs than that (see claimJobSlot), else undefined; with `doneEvent`, the final
 * `done` audit event of a job born done (answered from history).
 */
export async function insertJob(db: Queryable, job: NewJob, options: { maxActive?: number; doneEvent?: object } = {}): Promise<JobRecord | undefined> {
  // A single job answered from history is born done; a batch is finished by its caller.
  const done = job.source === 'HISTORY' && job.kind === 'SINGLE'
  const { rows } = await db.query({
    name: 'insert-job',
    text: `WITH j AS (
       INSERT INTO jobs (kind, owner_id, status, source, partnumber, input, channel, classification_id, finished_at, document_id)
       SELECT $1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END, $10
        WHERE CASE WHEN $11::int IS NULL THEN true ELSE job_slot_available($2, $11) END
       RETURNING *),
     event AS (
       INSERT INTO job_events (job_id, attempt, type, payload, final)
       SELECT j.id, j.attempt, 'done', $12, true FROM j WHERE $12::jsonb IS NOT NULL)
     SELECT ${JOB_COLUMNS} FROM j`,
  }, [job.kind, job.ownerId, done ? 'DONE' : 'QUEUED', job.source, job.partnumber, job.input, job.channel, job.classificationId ?? null, done,
      job.documentId ?? null, options.maxActive ?? null, options.doneEvent ?? null],
  )
  return rows[0]
}

/**
 * Within a transaction that will add a live job for `ownerId`: locks the owner's row until it
 * ends (concurrent starts of one owner are counted one after another, never all at once) and
 * tells whether they have fewer than `maxActive` live jobs.
 */
export async function claimJobSlot(db: Queryable, ownerId: string, maxActive: number): Promise<boolean> {
  const { rows } = await db.query('SELECT job_slot_available($1, $2) AS ok', [ownerId, maxActive])
  return rows[0].ok
}

export async function recordAiJobId(db: Queryable, id: string, attempt: number, aiJobId: string): Promise<void> {
  await db.query({ name: 'record-ai-job-id', text: 'UPDATE jobs SET ai_job_id = $3, updated_at = now() WHERE id = $1 AND attempt = $2' }, [id, attempt, aiJobId])
}

/** Puts a failed single job back in the queue on a fresh channel, as its next attempt. */
export async function requeueFailedJob(db: Queryable, id: string, channel: string): Promise<JobRecord | undefined> {
  const { rows } = await db.query(
    `UPDATE jobs j SET status = 'QUEUED', source = 'AI', channel = $2, attempt = attempt + 1, ai_job_id = NULL, error = NULL, timed_out = false,
            progress_current = NULL, progress_total = NULL, progress_message = NULL, classification_id = NULL,
            finished_at = NULL, result_published_at = NULL, updated_at = now(), last_activity_at = now()
      WHERE id = $1 AND kind = 'SINGLE' AND status = 'FAILED'
      RETURNING ${JOB_COLUMNS}`,
    [id, channel],
  )
  return rows[0]
}

/**
 * Puts a finished batch (DONE or FAILED) that has items without a result back in the queue on a
 * fresh channel, as its next attempt, in one statement: those items wait again (the part numbers
 * returned, in order), the items that have a result keep it, the counters start from them. Undefined
 * when the batch is not finished or has nothing to retry (a concurrent retry won).
 */
export async function requeueBatchFailedItems(db: Queryable, id: string, channel: string): Promise<{ job: JobRecord; partnumbers: string[] } | undefined> {
  const { rows } = await db.query(
    `WITH job AS (
       UPDATE jobs SET status = 'QUEUED', source = 'AI', channel = $2, attempt = attempt + 1, ai_job_id = NULL, error = NULL, timed_out = false,
              progress_current = (SELECT count(*) FROM job_items WHERE job_id = $1 AND status = 'DONE'),
              progress_total = (SELECT count(*) FROM job_items WHERE job_id = $1),
              progress_message = NULL, finished_at = NULL, result_published_at = NULL, updated_at = now(), last_activity_at = now()
        WHERE id = $1 AND kind = 'BATCH' AND status IN ('DONE', 'FAILED')
          AND EXISTS (SELECT 1 FROM job_items WHERE job_id = $1 AND status IN ('FAILED', 'PENDING'))
        RETURNING *),
     items AS (
       UPDATE job_items i SET status = 'PENDING', error = NULL, no_answer = false, finished_at = NULL, finish_order = NULL, source = NULL
         FROM job WHERE i.job_id = job.id AND i.status IN ('FAILED', 'PENDING')
        RETURNING i.partnumber, i.position)
     SELECT ${JOB_COLUMNS}, (SELECT array_agg(partnumber ORDER BY position) FROM items) AS retried_partnumbers FROM job j`,
    [id, channel],
  )
  if (!rows[0]) return undefined
  const { retried_partnumbers: partnumbers, ...job } = rows[0]
  return { job, partnumbers: partnumbers ?? [] }
}

/** How many items of a batch have no result (FAILED, or still PENDING): what a retry would send again. */
export async function countItemsWithoutResult(db: Queryable, id: string): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM job_items WHERE job_id = $1 AND status IN ('FAILED', 'PENDING')`, [id])
  return rows[0].n
}

export interface JobFilters {
  ownerId?: string
  status?: JobStatus
  kind?: JobKind
  partnumber?: string
  from?: Date
  to?: Date
  before?: { createdAt: Date; id: string }
  limit: number
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function listJobs(db: Queryable, f: JobFilters): Promise<JobView[]> {
  const { rows } = await db.query(
    `SELECT ${JOB_COLUMNS}, ${RESULT_COLUMNS} FROM jobs j ${RESULT_JOINS}
      WHERE ($1::uuid IS NULL OR j.owner_id = $1)
        AND ($2::text IS NULL OR j.status = $2)
        AND ($3::text IS NULL OR j.kind = $3)
        AND ($4::text IS NULL OR j.partnumber = $4)
        AND ($5::timestamptz IS NULL OR j.created_at >= $5)
        AND ($6::timestamptz IS NULL OR j.created_at < $6)
        AND ($7::timestamptz IS NULL OR (j.created_at, j.id) < (COALESCE((SELECT created_at FROM jobs WHERE id = $8), $7), $8::uuid))
      ORDER BY j.created_at DESC, j.id DESC
      LIMIT $9`,
    [f.ownerId ?? null, f.status ?? null, f.kind ?? null, f.partnumber ?? null, f.from ?? null, f.to ?? null,
      f.before?.createdAt ?? null, f.before?.id ?? null, f.limit],
  )
  const checks = await resultChecks(db, rows)
  return rows.map((r) => toJobView(r, resultOf(r, checks)))
}

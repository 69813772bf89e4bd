import type { Queryable } from '../../db/queryable.js'
import { CLASSIFICATION_SELECT, toClassificationView, type ClassificationView } from '../classifications/classifications-store.js'
import { countItems, listItems, type BatchCounts, type BatchItemView } from './batch-store.js'

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
  classification_id: string | null
  document_id: string | null
  created_at: Date
  updated_at: Date
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
  result: ClassificationView | null
  attempt: number
  owner_id: string
  document_id: string | null
  /** Batch jobs, when asked for one job: every item and the counts. */
  items?: BatchItemView[]
  counts?: BatchCounts
  created_at: Date
  updated_at: Date
  finished_at: Date | null
}

const JOB_COLUMNS = `j.id, j.kind, j.owner_id, j.status, j.source, j.partnumber, j.input, j.channel, j.attempt, j.ai_job_id,
  j.progress_current, j.progress_total, j.progress_message, j.error, j.classification_id, j.document_id, j.created_at, j.updated_at, j.finished_at`

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
    result,
    attempt: job.attempt,
    owner_id: job.owner_id,
    document_id: job.document_id,
    created_at: job.created_at,
    updated_at: job.updated_at,
    finished_at: job.finished_at,
  }
}

export async function getJobRecord(db: Queryable, id: string): Promise<JobRecord | undefined> {
  const { rows } = await db.query(`SELECT ${JOB_COLUMNS} FROM jobs j WHERE j.id = $1`, [id])
  return rows[0]
}

export async function findJobByChannel(db: Queryable, channel: string): Promise<JobRecord | undefined> {
  const { rows } = await db.query(`SELECT ${JOB_COLUMNS} FROM jobs j WHERE j.channel = $1`, [channel])
  return rows[0]
}

/** A job with its result, as clients see it; undefined when absent. */
export async function getJobView(db: Queryable, id: string): Promise<JobView | undefined> {
  const job = await getJobRecord(db, id)
  if (!job) return undefined
  const view = toJobView(job, await resultOf(db, job))
  if (job.kind === 'BATCH') {
    view.items = await listItems(db, job.id)
    view.counts = countItems(view.items)
  }
  return view
}

async function resultOf(db: Queryable, job: JobRecord): Promise<ClassificationView | null> {
  if (!job.classification_id) return null
  const { rows } = await db.query(`${CLASSIFICATION_SELECT} WHERE c.id = $1`, [job.classification_id])
  return rows[0] ? toClassificationView(rows[0]) : null
}

export async function insertJob(
  db: Queryable,
  job: { ownerId: string; kind: JobKind; partnumber: string | null; input: JobInput; channel: string; source: 'AI' | 'HISTORY'; classificationId?: string; documentId?: string },
): Promise<JobRecord> {
  // A single job answered from history is born done; a batch is finished by its caller.
  const done = job.source === 'HISTORY' && job.kind === 'SINGLE'
  const { rows } = await db.query(
    `INSERT INTO jobs AS j (kind, owner_id, status, source, partnumber, input, channel, classification_id, finished_at, document_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN now() END, $10)
     RETURNING ${JOB_COLUMNS}`,
    [job.kind, job.ownerId, done ? 'DONE' : 'QUEUED', job.source, job.partnumber, job.input, job.channel, job.classificationId ?? null, done, job.documentId ?? null],
  )
  return rows[0]
}

export async function recordAiJobId(db: Queryable, id: string, attempt: number, aiJobId: string): Promise<void> {
  await db.query('UPDATE jobs SET ai_job_id = $3, updated_at = now() WHERE id = $1 AND attempt = $2', [id, attempt, aiJobId])
}

export async function countActiveJobs(db: Queryable, ownerId: string): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM jobs WHERE owner_id = $1 AND status IN ('QUEUED', 'RUNNING')`, [ownerId])
  return rows[0].n
}

/** Puts a failed job back in the queue on a fresh channel, as its next attempt. */
export async function requeueFailedJob(db: Queryable, id: string, channel: string): Promise<JobRecord | undefined> {
  const { rows } = await db.query(
    `UPDATE jobs j SET status = 'QUEUED', source = 'AI', channel = $2, attempt = attempt + 1, ai_job_id = NULL, error = NULL,
            progress_current = NULL, progress_total = NULL, progress_message = NULL, classification_id = NULL,
            finished_at = NULL, result_published_at = NULL, updated_at = now(), last_activity_at = now()
      WHERE id = $1 AND status = 'FAILED'
      RETURNING ${JOB_COLUMNS}`,
    [id, channel],
  )
  return rows[0]
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
    `SELECT ${JOB_COLUMNS} FROM jobs j
      WHERE ($1::uuid IS NULL OR j.owner_id = $1)
        AND ($2::text IS NULL OR j.status = $2)
        AND ($3::text IS NULL OR j.kind = $3)
        AND ($4::text IS NULL OR j.partnumber = $4)
        AND ($5::timestamptz IS NULL OR j.created_at >= $5)
        AND ($6::timestamptz IS NULL OR j.created_at < $6)
        AND ($7::timestamptz IS NULL OR (j.created_at, j.id) < ($7, $8::uuid))
      ORDER BY j.created_at DESC, j.id DESC
      LIMIT $9`,
    [f.ownerId ?? null, f.status ?? null, f.kind ?? null, f.partnumber ?? null, f.from ?? null, f.to ?? null,
      f.before?.createdAt ?? null, f.before?.id ?? null, f.limit],
  )
  const classificationIds = rows.map((r) => r.classification_id).filter(Boolean)
  const results = new Map<string, ClassificationView>()
  if (classificationIds.length) {
    const found = await db.query(`${CLASSIFICATION_SELECT} WHERE c.id = ANY($1::uuid[])`, [classificationIds])
    for (const row of found.rows) results.set(row.id, toClassificationView(row))
  }
  return rows.map((r) => toJobView(r, r.classification_id ? results.get(r.classification_id) ?? null : null))
}

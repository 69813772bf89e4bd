import type pg from 'pg'
import type { Queryable } from '../../db/queryable.js'
import { CLASSIFICATION_SELECT, toClassificationViews, type ClassificationView } from '../classifications/classifications-store.js'
import type { JobInput } from './jobs-store.js'
import type { ClassificationFields } from '../ai/classification-result.js'

export type ItemStatus = 'PENDING' | 'DONE' | 'FAILED'

export interface BatchItemView {
  partnumber: string
  position: number
  status: ItemStatus
  source: 'AI' | 'HISTORY' | null
  input: JobInput
  result: ClassificationView | null
  error: string | null
  finished_at: Date | null
  /** Position in the order items finished; streams use it to send only what is new. */
  finish_order: number | null
}

export interface BatchCounts {
  total: number
  done: number
  failed: number
  pending: number
}

export interface NewItem {
  partnumber: string
  input: JobInput
  /** The accepted classification that answers this item from history, if any. */
  historyClassificationId?: string
}

export interface Chunk {
  chunk: number
  channel: string
  partnumbers: string[]
}

export async function insertItems(client: pg.PoolClient, jobId: string, items: NewItem[]): Promise<void> {
  await client.query(
    `INSERT INTO job_items (job_id, position, partnumber, input, status, source, classification_id, finish_order, finished_at)
     SELECT $1, i.position, i.partnumber, i.input,
            CASE WHEN i.classification_id IS NULL THEN 'PENDING' ELSE 'DONE' END,
            CASE WHEN i.classification_id IS NULL THEN NULL ELSE 'HISTORY' END,
            i.classification_id,
            CASE WHEN i.classification_id IS NULL THEN NULL ELSE nextval('job_items_finish_order') END,
            CASE WHEN i.classification_id IS NULL THEN NULL ELSE now() END
       FROM unnest($2::int[], $3::text[], $4::jsonb[], $5::uuid[]) AS i(position, partnumber, input, classification_id)`,
    [jobId, items.map((_, i) => i), items.map((i) => i.partnumber), items.map((i) => JSON.stringify(i.input)), items.map((i) => i.historyClassificationId ?? null)],
  )
}

export async function insertChunks(db: Queryable, jobId: string, attempt: number, chunks: Chunk[]): Promise<void> {
  await db.query(
    `INSERT INTO job_chunks (job_id, attempt, chunk, channel, partnumbers, status)
     SELECT $1, $2, c.chunk, c.channel, string_to_array(c.partnumbers, E'\\x1f'), 'RUNNING'
       FROM unnest($3::int[], $4::text[], $5::text[]) AS c(chunk, channel, partnumbers)`,
    [jobId, attempt, chunks.map((c) => c.chunk), chunks.map((c) => c.channel), chunks.map((c) => c.partnumbers.join('\x1f'))],
  )
}

export async function chunkChannels(db: Queryable, jobId: string, attempt: number): Promise<string[]> {
  const { rows } = await db.query('SELECT channel FROM job_chunks WHERE job_id = $1 AND attempt = $2 ORDER BY chunk', [jobId, attempt])
  return rows.map((r) => r.channel)
}

export async function recordChunkAiJobId(db: Queryable, jobId: string, attempt: number, chunk: number, aiJobId: string): Promise<void> {
  await db.query('UPDATE job_chunks SET ai_job_id = $4 WHERE job_id = $1 AND attempt = $2 AND chunk = $3', [jobId, attempt, chunk, aiJobId])
}

const ITEM_SELECT = `SELECT i.partnumber, i.position, i.status, i.source, i.input, i.error, i.finished_at, i.finish_order, i.classification_id FROM job_items i`

async function withResults(db: Queryable, rows: any[]): Promise<BatchItemView[]> {
  const ids = rows.map((r) => r.classification_id).filter(Boolean)
  const results = new Map<string, ClassificationView>()
  if (ids.length) {
    const found = await db.query(`${CLASSIFICATION_SELECT} WHERE c.id = ANY($1::uuid[])`, [ids])
    for (const view of await toClassificationViews(db, found.rows)) results.set(view.id, view)
  }
  return rows.map((r) => ({
    partnumber: r.partnumber,
    position: r.position,
    status: r.status,
    source: r.source,
    input: r.input,
    result: r.classification_id ? results.get(r.classification_id) ?? null : null,
    error: r.error,
    finished_at: r.finished_at,
    finish_order: r.finish_order === null ? null : Number(r.finish_order),
  }))
}

export async function listItems(db: Queryable, jobId: string): Promise<BatchItemView[]> {
  const { rows } = await db.query(`${ITEM_SELECT} WHERE i.job_id = $1 ORDER BY i.position`, [jobId])
  return withResults(db, rows)
}

/** Items that finished after `finishOrder`, in the order they finished. */
export async function itemsFinishedAfter(db: Queryable, jobId: string, finishOrder: number): Promise<BatchItemView[]> {
  const { rows } = await db.query(
    `${ITEM_SELECT} WHERE i.job_id = $1 AND i.finish_order > $2 ORDER BY i.finish_order`,
    [jobId, finishOrder],
  )
  return withResults(db, rows)
}

export function countItems(items: Array<{ status: ItemStatus }>): BatchCounts {
  const counts = { total: items.length, done: 0, failed: 0, pending: 0 }
  for (const item of items) {
    if (item.status === 'DONE') counts.done++
    else if (item.status === 'FAILED') counts.failed++
    else counts.pending++
  }
  return counts
}

export async function itemInputs(db: Queryable, jobId: string, partnumbers: string[]): Promise<Map<string, JobInput>> {
  const { rows } = await db.query('SELECT partnumber, input FROM job_items WHERE job_id = $1 AND partnumber = ANY($2)', [jobId, partnumbers])
  return new Map(rows.map((r) => [r.partnumber, r.input]))
}

/** An answer of the AI server that no item of the batch could take (see job_unmatched_answers). */
export interface UnmatchedAnswerView {
  /** no_item: it named no item of the batch and none was waiting; item_answered: its item had another answer already. */
  reason: 'no_item' | 'item_answered'
  partnumber: string | null
  result: ClassificationFields | null
  error: string | null
  message: string | null
  received_at: Date
}

export async function listUnmatchedAnswers(db: Queryable, jobId: string): Promise<UnmatchedAnswerView[]> {
  const { rows } = await db.query(
    'SELECT reason, partnumber, result, error, message, received_at FROM job_unmatched_answers WHERE job_id = $1 ORDER BY id',
    [jobId],
  )
  return rows
}

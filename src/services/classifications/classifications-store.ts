import type pg from 'pg'
import { inTransaction, type Queryable } from '../../db/queryable.js'
import { formatNcm, type ClassificationFields } from '../ai/classification-result.js'
import { REVIEW_REASONS, type Review, type ReviewReason } from './review-reasons.js'

export type ClassificationStatus = 'ACTIVE' | 'PENDING' | 'REJECTED' | 'REPLACED'

export interface ClassificationView {
  id: string
  partnumber: string
  ncm: string
  ncm_formatted: string
  ex: string | null
  nve: string | null
  description: string | null
  manufacturer: { name: string; address: string | null; country: string | null } | null
  confidence: number | null
  status: ClassificationStatus
  /** Why it waits for review (PENDING), each with its explanation; empty otherwise. */
  review_reasons: Array<{ code: ReviewReason; message: string }>
  /** The part number the AI server's answer named, when it is not the one asked for. */
  answered_partnumber: string | null
  job_id: string | null
  created_at: Date
  reviewed_at: Date | null
}

export const CLASSIFICATION_SELECT = `
  SELECT c.id, p.code AS partnumber, c.ncm, c.ex, c.nve, c.description, c.confidence, c.status, c.review_reasons, c.answered_partnumber, c.job_id,
         c.created_at, c.reviewed_at, m.name AS m_name, m.address AS m_address, m.country AS m_country
    FROM classifications c
    JOIN partnumbers p ON p.id = c.partnumber_id
    LEFT JOIN manufacturers m ON m.id = c.manufacturer_id`

export function toClassificationView(row: Record<string, any>): ClassificationView {
  return {
    id: row.id,
    partnumber: row.partnumber,
    ncm: row.ncm,
    ncm_formatted: formatNcm(row.ncm),
    ex: row.ex,
    nve: row.nve,
    description: row.description,
    manufacturer: row.m_name ? { name: row.m_name, address: row.m_address, country: row.m_country } : null,
    confidence: row.confidence === null ? null : Number(row.confidence),
    status: row.status,
    review_reasons: (row.review_reasons as ReviewReason[]).map((code) => ({ code, message: REVIEW_REASONS[code] ?? code })),
    answered_partnumber: row.answered_partnumber,
    job_id: row.job_id,
    created_at: row.created_at,
    reviewed_at: row.reviewed_at,
  }
}

/** Part numbers are compared without case or surrounding space. */
export function normalizePartnumber(code: string): string {
  return code.trim().replace(/\s+/g, ' ').toUpperCase()
}

export async function findActiveClassification(db: Queryable, partnumber: string): Promise<ClassificationView | undefined> {
  const { rows } = await db.query({ name: 'active-classification', text: `${CLASSIFICATION_SELECT} WHERE p.code = $1 AND c.status = 'ACTIVE'` }, [partnumber])
  return rows[0] ? toClassificationView(rows[0]) : undefined
}

export async function getClassification(db: Queryable, id: string): Promise<ClassificationView | undefined> {
  const { rows } = await db.query(`${CLASSIFICATION_SELECT} WHERE c.id = $1`, [id])
  return rows[0] ? toClassificationView(rows[0]) : undefined
}

/**
 * Stores a new accepted classification for `partnumber` (in the caller's transaction, if any),
 * marking the one it supersedes as REPLACED. Idempotent per job and part number.
 */
export async function storeClassification(db: Queryable, jobId: string, partnumber: string, fields: ClassificationFields, review: Review): Promise<string> {
  const { rows } = await db.query(
    'SELECT store_classification($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) AS id',
    [jobId, partnumber, ...classificationArguments(fields, review)],
  )
  return rows[0].id
}

/**
 * A result's fields in the order store_classification and finish_job take them (ncm … confidence,
 * review reasons, answered part number).
 */
export function classificationArguments(fields: ClassificationFields | null, review: Review | null) {
  return [
    fields?.ncm ?? null, fields?.ex ?? null, fields?.nve ?? null, fields?.description ?? null,
    fields?.manufacturer?.name ?? null, fields?.manufacturer?.address ?? null, fields?.manufacturer?.country ?? null, fields?.confidence ?? null,
    review?.reasons ?? [], review?.answeredPartnumber ?? null,
  ]
}

/**
 * A reviewer accepts (ACTIVE) or rejects (REJECTED) a classification. Accepting one
 * replaces the part number's current accepted classification.
 */
export async function reviewClassification(pool: pg.Pool, id: string, status: 'ACTIVE' | 'REJECTED', reviewerId: string): Promise<ClassificationView | undefined> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query('SELECT partnumber_id FROM classifications WHERE id = $1', [id])
    if (!rows[0]) return undefined
    await client.query('SELECT id FROM partnumbers WHERE id = $1 FOR UPDATE', [rows[0].partnumber_id])
    if (status === 'ACTIVE') {
      await client.query(
        `UPDATE classifications SET status = 'REPLACED' WHERE partnumber_id = $1 AND status = 'ACTIVE' AND id <> $2`,
        [rows[0].partnumber_id, id],
      )
    }
    await client.query('UPDATE classifications SET status = $2, reviewed_by = $3, reviewed_at = now() WHERE id = $1', [id, status, reviewerId])
    const updated = await client.query(`${CLASSIFICATION_SELECT} WHERE c.id = $1`, [id])
    return toClassificationView(updated.rows[0])
  })
}

import type pg from 'pg'
import { inTransaction, UNIQUE_VIOLATION, type Queryable } from '../../db/queryable.js'
import { formatNcm, type ClassificationFields } from '../ai/classification-result.js'
import { NCM_REVIEW_REASONS, REVIEW_REASONS, type Review, type ReviewReason } from './review-reasons.js'
import type { NcmCheck } from '../ncm/ncm-check.js'
import { checkNcms, type NcmChecks } from '../ncm/ncm-checks.js'

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
  /** The code checked against the current official NCM table, when the result is read (so old results are checked too). */
  ncm_check: NcmCheck
  /** A person's correction of the code (PATCH /classifications/:id {ncm}); null when the code is the AI server's. */
  correction: { previous_ncm: string; corrected_by: string; corrected_at: Date } | null
  job_id: string | null
  created_at: Date
  reviewed_at: Date | null
}

export const CLASSIFICATION_SELECT = `
  SELECT c.id, p.code AS partnumber, c.ncm, c.ex, c.nve, c.description, c.confidence, c.status, c.review_reasons, c.answered_partnumber, c.job_id,
         c.previous_ncm, c.corrected_by, c.corrected_at, c.created_at, c.reviewed_at, m.name AS m_name, m.address AS m_address, m.country AS m_country
    FROM classifications c
    JOIN partnumbers p ON p.id = c.partnumber_id
    LEFT JOIN manufacturers m ON m.id = c.manufacturer_id`

/** What a code's check is when none was made (a row read without its checks). */
const UNCHECKED: NcmCheck = { status: 'UNKNOWN', table_version: null, description: null, path: [], ipi: null }

/** A row of CLASSIFICATION_SELECT (or the same columns), with the checks of its code (checkNcms). */
export function toClassificationView(row: Record<string, any>, checks: NcmChecks): ClassificationView {
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
    ncm_check: checks.get(row.ncm) ?? UNCHECKED,
    correction: row.corrected_at ? { previous_ncm: row.previous_ncm, corrected_by: row.corrected_by, corrected_at: row.corrected_at } : null,
    job_id: row.job_id,
    created_at: row.created_at,
    reviewed_at: row.reviewed_at,
  }
}

/** Rows of CLASSIFICATION_SELECT as views, their codes checked against the current table (each distinct code once). */
export async function toClassificationViews(db: Queryable, rows: Array<Record<string, any>>): Promise<ClassificationView[]> {
  const checks = await checkNcms(db, rows.map((r) => r.ncm))
  return rows.map((row) => toClassificationView(row, checks))
}

/** Part numbers are compared without case or surrounding space. */
export function normalizePartnumber(code: string): string {
  return code.trim().replace(/\s+/g, ' ').toUpperCase()
}

export async function findActiveClassification(db: Queryable, partnumber: string): Promise<ClassificationView | undefined> {
  const { rows } = await db.query({ name: 'active-classification', text: `${CLASSIFICATION_SELECT} WHERE p.code = $1 AND c.status = 'ACTIVE'` }, [partnumber])
  return rows[0] ? (await toClassificationViews(db, rows))[0] : undefined
}

export async function getClassification(db: Queryable, id: string): Promise<ClassificationView | undefined> {
  const { rows } = await db.query(`${CLASSIFICATION_SELECT} WHERE c.id = $1`, [id])
  return rows[0] ? (await toClassificationViews(db, rows))[0] : undefined
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

/** A reviewer's decision (PATCH /classifications/:id). */
export type ReviewDecision = 'ACTIVE' | 'REJECTED'

/**
 * Why a review is refused: the classification no longer has the status the reviewer saw
 * (`expected`: someone else decided meanwhile), or, when accepting, another classification of the
 * part number became ACTIVE at the same moment by a writer that does not take the part number's
 * lock (the one-ACTIVE unique index refused the second).
 */
export type ReviewConflict = 'classification_status_changed' | 'classification_conflict'

export type ReviewOutcome =
  | { ok: true; classification: ClassificationView }
  | { ok: false; conflict: ReviewConflict; status: ClassificationStatus }

/**
 * The review rules. Every decision may be made from every status, and changed later:
 *
 *   from \ to  | ACTIVE (accept)                            | REJECTED (reject)
 *   PENDING    | accepted; the part's ACTIVE one → REPLACED | rejected; the part's ACTIVE one untouched
 *   ACTIVE     | confirmed (reviewer recorded, no change)   | withdrawn: the part number has no accepted one
 *   REJECTED   | reinstated; the ACTIVE one → REPLACED      | confirmed (reviewer recorded, no change)
 *   REPLACED   | restored; the ACTIVE one → REPLACED        | rejected (recorded as judged wrong)
 *
 * Repeating a decision is harmless (a client retrying, two reviewers agreeing). What a review must
 * not do is overrule a decision its reviewer has not seen: with `expected` (the status the reviewer
 * saw, PENDING in a review queue) it is refused when the status is another one now.
 */
export function reviewConflict(current: ClassificationStatus, expected: ClassificationStatus | undefined): ReviewConflict | null {
  return expected !== undefined && expected !== current ? 'classification_status_changed' : null
}

const ONE_ACTIVE_INDEX = 'classifications_one_active_idx'

/** What a PATCH asks: a decision, a corrected code (checked VALID by the caller), or both. */
export interface ReviewChange {
  decision?: ReviewDecision
  /** The corrected NCM code (8 digits) and the table version it was checked VALID against. */
  correction?: { ncm: string; tableVersion: string | null }
}

/**
 * The decision a correction implies when none is given: a PENDING result held back only by its NCM
 * check (every review reason is ncm_*) is accepted by a person's correction to a VALID code — the one
 * thing the gateway doubted has been decided by a person; anything else keeps its status.
 */
export function impliedDecision(status: ClassificationStatus, reasons: ReviewReason[]): ReviewDecision | undefined {
  return status === 'PENDING' && reasons.length > 0 && reasons.every((r) => NCM_REVIEW_REASONS.includes(r)) ? 'ACTIVE' : undefined
}

/**
 * Within the caller's transaction, holding the part number's row lock: a decision on `id`.
 * Accepting makes it the part number's accepted classification (the one it had becomes REPLACED).
 * `reviewerId` null: the gateway decided (a later answer confirmed it).
 */
export async function decideClassification(client: pg.PoolClient, id: string, partnumberId: string, status: 'ACTIVE' | 'REJECTED', reviewerId: string | null): Promise<void> {
  if (status === 'ACTIVE') {
    await client.query(`UPDATE classifications SET status = 'REPLACED' WHERE partnumber_id = $1 AND status = 'ACTIVE' AND id <> $2`, [partnumberId, id])
  }
  await client.query('UPDATE classifications SET status = $2, reviewed_by = $3, reviewed_at = now() WHERE id = $1', [id, status, reviewerId])
}

/**
 * A reviewer accepts (ACTIVE) or rejects (REJECTED) a classification, by the rules of
 * reviewConflict, and/or corrects its NCM code; reviewed_by and reviewed_at record who decided last
 * and when, corrected_by, corrected_at and previous_ncm who corrected the code last, when and from
 * what (every correction is kept in classification_corrections). Accepting one replaces the part
 * number's current accepted classification. Reviews of one part number are serialised on its row
 * (as store_classification is, by its upsert), and the decision is checked against the status read
 * under that lock. Undefined when there is no such classification.
 */
export async function reviewClassification(
  pool: pg.Pool, id: string, change: ReviewChange, reviewerId: string, expected?: ClassificationStatus,
): Promise<ReviewOutcome | undefined> {
  try {
    return await inTransaction(pool, async (client) => {
      const { rows } = await client.query('SELECT partnumber_id FROM classifications WHERE id = $1', [id])
      if (!rows[0]) return undefined
      await client.query('SELECT id FROM partnumbers WHERE id = $1 FOR UPDATE', [rows[0].partnumber_id])
      const current = await client.query('SELECT status, ncm, review_reasons FROM classifications WHERE id = $1 FOR UPDATE', [id])
      const status = current.rows[0].status as ClassificationStatus
      const conflict = reviewConflict(status, expected)
      if (conflict) return { ok: false as const, conflict, status }
      const { correction } = change
      if (correction && correction.ncm !== current.rows[0].ncm) {
        await client.query(
          `UPDATE classifications SET previous_ncm = ncm, ncm = $2, corrected_by = $3, corrected_at = now() WHERE id = $1`,
          [id, correction.ncm, reviewerId],
        )
        await client.query(
          `INSERT INTO classification_corrections (classification_id, previous_ncm, ncm, table_version, corrected_by) VALUES ($1, $2, $3, $4, $5)`,
          [id, current.rows[0].ncm, correction.ncm, correction.tableVersion, reviewerId],
        )
      }
      const decision = change.decision ?? (correction ? impliedDecision(status, current.rows[0].review_reasons) : undefined)
      if (decision) await decideClassification(client, id, rows[0].partnumber_id, decision, reviewerId)
      const updated = await client.query(`${CLASSIFICATION_SELECT} WHERE c.id = $1`, [id])
      return { ok: true as const, classification: (await toClassificationViews(pool, updated.rows))[0]! }
    })
  } catch (err) {
    const e = err as { code?: string; constraint?: string }
    if (e.code === UNIQUE_VIOLATION && e.constraint === ONE_ACTIVE_INDEX) {
      const now = await getClassification(pool, id)
      return { ok: false, conflict: 'classification_conflict', status: now?.status ?? 'PENDING' }
    }
    throw err
  }
}

export interface ClassificationFilters {
  /** Only the results of this user's jobs (undefined: everyone's, for admins). */
  ownerId?: string
  status?: ClassificationStatus
  jobId?: string
  partnumber?: string
  before?: { createdAt: Date; id: string }
  limit: number
}

/**
 * Classifications, newest first, keyset-paginated on (created_at, id): the review queue with
 * status PENDING. A classification belongs to the owner of the job that produced it.
 * The cursor's row is read for its exact created_at (see cursor.ts).
 */
export async function listClassifications(db: Queryable, f: ClassificationFilters): Promise<ClassificationView[]> {
  const { rows } = await db.query(
    `${CLASSIFICATION_SELECT}
      WHERE ($1::uuid IS NULL OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id AND j.owner_id = $1))
        AND ($2::text IS NULL OR c.status = $2)
        AND ($3::uuid IS NULL OR c.job_id = $3)
        AND ($4::text IS NULL OR p.code = $4)
        AND ($5::timestamptz IS NULL OR (c.created_at, c.id) < (COALESCE((SELECT created_at FROM classifications WHERE id = $6), $5), $6::uuid))
      ORDER BY c.created_at DESC, c.id DESC
      LIMIT $7`,
    [f.ownerId ?? null, f.status ?? null, f.jobId ?? null, f.partnumber ?? null, f.before?.createdAt ?? null, f.before?.id ?? null, f.limit],
  )
  return toClassificationViews(db, rows)
}

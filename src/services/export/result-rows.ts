import type { JobView } from '../jobs/jobs-store.js'
import type { ClassificationStatus } from '../classifications/classifications-store.js'
import { formatNcm } from '../ai/classification-result.js'
import type { NcmCheck } from '../ncm/ncm-check.js'

/**
 * One row of a job's results export (results.csv, results.json): a batch's items in order, then
 * the answers of the AI server that no item could take; or a single job's one result.
 */
export interface ResultRow {
  /** The item's part number; for an UNMATCHED row the one the answer named (null: it named none). */
  partnumber: string | null
  ncm: string | null
  ex: string | null
  description: string | null
  manufacturer: string | null
  country: string | null
  confidence: number | null
  /** The item's status (DONE, FAILED, PENDING), or UNMATCHED for an answer no item took. */
  status: 'DONE' | 'FAILED' | 'PENDING' | 'UNMATCHED'
  /** The item's classification's status now (ACTIVE, PENDING: waits for review, REJECTED, REPLACED); null without one. */
  classification_status: ClassificationStatus | null
  /**
   * Why a person should look at the row: the classification's review reasons (partnumber_mismatch,
   * attributed_by_order), or for an UNMATCHED row why no item took it (no_item, item_answered).
   */
  review_reasons: string[]
  /** The part number the AI server's answer named, when it is not the item's. */
  answered_partnumber: string | null
  error: string | null
  /** The AI server's own text that came with an UNMATCHED answer. */
  message: string | null
  /** The code's check against the current official NCM table (VALID, UNKNOWN, EXPIRED, NOT_LEAF); null without a classification. */
  ncm_check_status: NcmCheck['status'] | null
  /** The code's official description (NCM table). */
  ncm_official_description: string | null
  /** The code's IPI rate (TIPI), percent, when known. */
  ipi: number | null
}

export function resultRows(job: JobView): ResultRow[] {
  const entries = job.items
    ?? [{ partnumber: job.partnumber ?? '', status: job.status === 'DONE' ? 'DONE' as const : job.status === 'FAILED' ? 'FAILED' as const : 'PENDING' as const, result: job.result, error: job.error }]
  const rows: ResultRow[] = entries.map((e) => ({
    partnumber: e.partnumber,
    ncm: e.result?.ncm_formatted ?? null,
    ex: e.result?.ex ?? null,
    description: e.result?.description ?? null,
    manufacturer: e.result?.manufacturer?.name ?? null,
    country: e.result?.manufacturer?.country ?? null,
    confidence: e.result?.confidence ?? null,
    status: e.status,
    classification_status: e.result?.status ?? null,
    review_reasons: e.result?.review_reasons.map((r) => r.code) ?? [],
    answered_partnumber: e.result?.answered_partnumber ?? null,
    error: e.error,
    message: null,
    ncm_check_status: e.result?.ncm_check.status ?? null,
    ncm_official_description: e.result?.ncm_check.description ?? null,
    ipi: e.result?.ncm_check.ipi ?? null,
  }))
  for (const answer of job.unmatched_answers ?? []) {
    const result = answer.result
    rows.push({
      partnumber: answer.partnumber,
      ncm: result?.ncm ? formatNcm(result.ncm) : null,
      ex: result?.ex ?? null,
      description: result?.description ?? null,
      manufacturer: result?.manufacturer?.name ?? null,
      country: result?.manufacturer?.country ?? null,
      confidence: result?.confidence ?? null,
      status: 'UNMATCHED',
      classification_status: null,
      review_reasons: [answer.reason],
      answered_partnumber: null,
      error: answer.error,
      message: answer.message,
      ncm_check_status: null,
      ncm_official_description: null,
      ipi: null,
    })
  }
  return rows
}

import type { NcmCheck } from '../ncm/ncm-check.js'

/**
 * Why a result waits for a person (status PENDING) instead of becoming the part number's accepted
 * classification. Each code is explained to the user in the API's `review_reasons` and the console.
 */
export const REVIEW_REASONS = {
  /** The AI server's answer names another part number than the one asked for. */
  partnumber_mismatch: 'The AI server\'s answer names another part number than the one asked for',
  /** The answer named no part number; it was given to the item the AI server was working on, by order. */
  attributed_by_order: 'The answer named no part number; it was attributed by the order the AI server works in',
  /** The NCM code is not in the official NCM table. */
  ncm_unknown: 'The NCM code is not in the official NCM table',
  /** The NCM code was in the official table but is no longer in force. */
  ncm_expired: 'The NCM code is no longer in force in the official NCM table',
  /** The NCM code is a heading or subheading of the official table, not an 8-digit item. */
  ncm_not_leaf: 'The NCM code is a heading of the official NCM table, not an item that can be declared',
} as const

export type ReviewReason = keyof typeof REVIEW_REASONS

/** What a stored result needs to be trusted: no reasons means it is accepted at once. */
export interface Review {
  reasons: ReviewReason[]
  /** The part number the answer named, when it is not the one asked for. */
  answeredPartnumber: string | null
}

export const TRUSTED: Review = { reasons: [], answeredPartnumber: null }

/**
 * Two spellings of one part number: case, spaces and the separators people and systems add or drop
 * (`BC847-BLT1G`, `bc847 blt1g`) do not make another part.
 */
export function partnumberKey(partnumber: string): string {
  return partnumber.toUpperCase().replace(/[\s\-_./]/g, '')
}

/** The review a result for `asked` needs, given the part number it names (null: it names none). */
export function reviewFor(asked: string, named: string | null, attributedByOrder = false): Review {
  const reasons: ReviewReason[] = []
  const mismatch = named !== null && partnumberKey(named) !== partnumberKey(asked)
  if (mismatch) reasons.push('partnumber_mismatch')
  if (attributedByOrder && !mismatch) reasons.push('attributed_by_order')
  return { reasons, answeredPartnumber: mismatch ? named : null }
}

const NCM_REASONS: Record<Exclude<NcmCheck['status'], 'VALID'>, ReviewReason> = {
  UNKNOWN: 'ncm_unknown',
  EXPIRED: 'ncm_expired',
  NOT_LEAF: 'ncm_not_leaf',
}

/** The reason codes of the NCM check (review reasons whose code starts with ncm_). */
export const NCM_REVIEW_REASONS: readonly ReviewReason[] = Object.values(NCM_REASONS)

/**
 * The review reasons a result's NCM check gives: none when the code is VALID. Without an official
 * table (table_version null: none loaded yet; the gateway imports the snapshot at startup when its
 * table is empty) there is nothing to check against, and the check holds nothing back.
 */
export function ncmReasons(check: NcmCheck | null | undefined): ReviewReason[] {
  if (!check || check.status === 'VALID' || check.table_version === null) return []
  return [NCM_REASONS[check.status]]
}

/** A review with the NCM check's reasons added. */
export function withNcmCheck(review: Review, check: NcmCheck | null | undefined): Review {
  const extra = ncmReasons(check).filter((r) => !review.reasons.includes(r))
  return extra.length ? { ...review, reasons: [...review.reasons, ...extra] } : review
}

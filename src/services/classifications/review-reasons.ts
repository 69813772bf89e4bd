/**
 * Why a result waits for a person (status PENDING) instead of becoming the part number's accepted
 * classification. Each code is explained to the user in the API's `review_reasons` and the console.
 */
export const REVIEW_REASONS = {
  /** The AI server's answer names another part number than the one asked for. */
  partnumber_mismatch: 'The AI server\'s answer names another part number than the one asked for',
  /** The answer named no part number; it was given to the item the AI server was working on, by order. */
  attributed_by_order: 'The answer named no part number; it was attributed by the order the AI server works in',
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

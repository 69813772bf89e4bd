import { HttpError } from '../../http-errors.js'
import { normalizePartnumber } from '../classifications/classifications-store.js'
import type { DocumentView } from './documents-store.js'

/** The batch items of a document: all its part numbers, or the chosen subset (which must all be in it). */
export function documentBatchItems(doc: DocumentView, subset?: string[]): Array<{ partnumber: string; description?: string }> {
  const parts = doc.part_numbers.map((p) => ({ partnumber: p.partnumber, ...(p.description ? { description: p.description } : {}) }))
  if (!subset) return parts
  const byCode = new Map(parts.map((p) => [normalizePartnumber(p.partnumber), p]))
  const unknown = subset.filter((code) => !byCode.has(normalizePartnumber(code)))
  if (unknown.length) {
    throw new HttpError(400, 'partnumbers_not_in_document', `not in this document: ${unknown.slice(0, 10).join(', ')}${unknown.length > 10 ? '…' : ''}`)
  }
  return subset.map((code) => byCode.get(normalizePartnumber(code))!)
}

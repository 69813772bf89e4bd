import type { AiMessage } from '../ai/messages.js'
import type { ResultOutcome } from '../ai/classification-result.js'
import { normalizePartnumber } from '../classifications/classifications-store.js'
import { partnumberKey } from '../classifications/review-reasons.js'
import { NO_REASON_GIVEN, unusableResult } from './single-job-events.js'

/**
 * One answer of the AI server about one item of a batch: a result (usable or not) or a failure,
 * with what it says about which part number it is for.
 */
export type BatchAnswer =
  | { kind: 'result'; result: ResultOutcome; named: string | null; text: string | null }
  | { kind: 'error'; error: string; named: null; text: string }

/** An item of the batch, as matching sees it. */
export interface AnswerableItem {
  partnumber: string
  position: number
  status: 'PENDING' | 'DONE' | 'FAILED'
  /** The AI chunk it was sent in (this attempt's), null when it was not sent (answered from history). */
  chunk: number | null
}

/** How an answer was tied to its item: by the part number its result names, the one its text names, or the order the server works in. */
export type MatchedBy = 'partnumber' | 'text' | 'order'


/**
 * The answer a chunk's message carries, if any: `partial_result`, `failed`, and a `done` that
 * carries a result (the real server sends one for every item). A `done` without a result (the
 * end of the chunk) and progress carry none.
 */
export function answerOf(message: AiMessage): BatchAnswer | undefined {
  switch (message.status) {
    case 'partial_result':
      return { kind: 'result', result: message.result, named: message.partnumber, text: message.progress.message }
    case 'done':
      return message.result ? { kind: 'result', result: message.result, named: message.partnumber, text: null } : undefined
    case 'failed':
      return { kind: 'error', error: message.error?.trim() || NO_REASON_GIVEN, named: null, text: message.error ?? '' }
    case 'processing':
      return undefined
  }
}

/** The failure an answer reports: its error, or why its result cannot be stored; null for a usable result. */
export function failureOf(answer: BatchAnswer): string | null {
  if (answer.kind === 'error') return answer.error
  return answer.result.ok ? null : unusableResult(answer.result.reason)
}

const squeeze = (text: string) => normalizePartnumber(text)

// The real server's texts name the part number right after the word "partnumber", with or without
// a space ("Classificação encontrada para o partnumber LM 358N", "Erro ao processar partnumberR10K").
const AFTER_PARTNUMBER = /partnumber\s*/giu

/**
 * The item a text names: an item's whole part number at a word boundary (spaces and punctuation
 * inside it allowed), the longest when several fit; after the word "partnumber" when the text has
 * it, so "Erro ao processar partnumberFAIL10K" names FAIL10K and never RFAIL10K.
 */
export function itemNamedInText<T extends AnswerableItem>(text: string | null, items: readonly T[]): T | undefined {
  if (!text) return undefined
  const upper = squeeze(text)
  const starts = [...upper.matchAll(AFTER_PARTNUMBER)].map((m) => m.index! + m[0].length)
  let best: T | undefined
  for (const item of items) {
    if (best && item.partnumber.length <= best.partnumber.length) continue
    const fits = starts.length > 0
      ? starts.some((at) => upper.startsWith(item.partnumber, at) && endsAtBoundary(upper, at + item.partnumber.length))
      : occursAsWord(upper, item.partnumber)
    if (fits) best = item
  }
  return best
}

// A part number ends where the text does, or at a space or a punctuation mark that is not part of it.
const endsAtBoundary = (text: string, end: number) => end === text.length || /[\s,;:!?)"'\]]/u.test(text[end]!) || (text[end] === '.' && (end + 1 === text.length || /\s/u.test(text[end + 1]!)))

function occursAsWord(text: string, partnumber: string): boolean {
  for (let at = text.indexOf(partnumber); at !== -1; at = text.indexOf(partnumber, at + 1)) {
    const startsAtBoundary = at === 0 || /[\s,;:(["']/u.test(text[at - 1]!)
    if (startsAtBoundary && endsAtBoundary(text, at + partnumber.length)) return true
  }
  return false
}

const namesAPartnumber = (text: string | null) => text !== null && /partnumber\s*[^\s.]/iu.test(text)

/**
 * The part numbers an answer may name, to read those items of a large batch by key: its result's,
 * and each stretch of its text after "partnumber" that ends where a part number can end (at most 100
 * characters: the longest part number). Matching itself is matchAnswer's.
 */
export function candidateNames(answer: BatchAnswer): string[] {
  const names = new Set<string>()
  if (answer.named !== null) names.add(normalizePartnumber(answer.named))
  const text = answer.text ? squeeze(answer.text) : ''
  for (const marker of text.matchAll(AFTER_PARTNUMBER)) {
    const start = marker.index! + marker[0].length
    const end = Math.min(text.length, start + 100)
    for (let at = start + 1; at <= end; at++) if (endsAtBoundary(text, at)) names.add(text.slice(start, at))
  }
  return [...names]
}

/** The item of the batch whose part number the result names: exactly, else spelled differently (case, spaces, separators). */
function itemNamedByResult<T extends AnswerableItem>(named: string | null, items: readonly T[]): T | undefined {
  if (named === null) return undefined
  const exact = normalizePartnumber(named)
  const key = partnumberKey(named)
  return items.find((i) => i.partnumber === exact) ?? items.find((i) => partnumberKey(i.partnumber) === key)
}

/**
 * The item an answer is for, among all items of the batch: by the part number its result names,
 * then by the part number its text names, then (only when it names none at all) the first item
 * of its chunk still waiting, in the order the server works through them. Undefined: no item.
 */
export function matchAnswer<T extends AnswerableItem>(answer: BatchAnswer, items: readonly T[], chunk: number): { item: T; by: MatchedBy } | undefined {
  const byResult = itemNamedByResult(answer.named, items)
  if (byResult) return { item: byResult, by: 'partnumber' }
  const byText = itemNamedInText(answer.text, items)
  if (byText) return { item: byText, by: 'text' }
  // An answer that names a part number no item has is for no item (another job's, say), not the next one.
  if (answer.named !== null || namesAPartnumber(answer.text)) return undefined
  const next = items.filter((i) => i.chunk === chunk && i.status === 'PENDING').sort((a, b) => a.position - b.position)[0]
  return next ? { item: next, by: 'order' } : undefined
}

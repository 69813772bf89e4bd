import type { AiMessage, Progress } from '../ai/messages.js'
import type { ClassificationFields } from '../ai/classification-result.js'

/** The failure told when the AI server's `failed` gives no reason. */
export const NO_REASON_GIVEN = 'AI server reported a failure without a reason'

/** The failure told for a result that cannot be stored. */
export const unusableResult = (reason: string) => `AI server sent an unusable result: ${reason}`

/** What one AI message means for a single-part-number job; the listener and the streams agree on it. */
export type SingleJobEvent =
  | { type: 'progress'; progress: Progress }
  | { type: 'done'; fields: ClassificationFields }
  | { type: 'failed'; error: string }
  | { type: 'ignored'; reason: string }

/** A message that is not progress (the listener writes progress through its ProgressWriter). */
export type SingleJobEnd = Exclude<AiMessage, { status: 'processing' }>

export function singleJobEvent(message: SingleJobEnd): Exclude<SingleJobEvent, { type: 'progress' }>
export function singleJobEvent(message: AiMessage): SingleJobEvent
export function singleJobEvent(message: AiMessage): SingleJobEvent {
  switch (message.status) {
    case 'processing':
      return { type: 'progress', progress: message.progress }
    case 'failed':
      return { type: 'failed', error: message.error?.trim() || NO_REASON_GIVEN }
    case 'done':
      if (!message.result) return { type: 'failed', error: 'AI server finished without a result' }
      if (!message.result.ok) return { type: 'failed', error: unusableResult(message.result.reason) }
      return { type: 'done', fields: message.result.fields }
    case 'partial_result':
      return { type: 'ignored', reason: 'partial_result on a single-part-number job' }
  }
}

import { hash as digest } from 'node:crypto'
import { normalizeResult, resultPartnumber, type ResultOutcome } from './classification-result.js'
import { storableText } from './storable-text.js'

/** A message published by the AI server on a job's channel, after validation. */
export type AiMessage =
  | { status: 'processing'; jobId: string | null; progress: Progress }
  | { status: 'partial_result'; jobId: string | null; progress: Progress; result: ResultOutcome; /** the part number the result names, even when the result is unusable */ partnumber: string | null }
  | { status: 'failed'; jobId: string | null; error: string | null }
  | { status: 'done'; jobId: string | null; result: ResultOutcome | null; /** the part number its result names, if any */ partnumber: string | null }

export interface Progress {
  current: number
  total: number
  message: string | null
}

export type ParsedMessage =
  | { ok: true; message: AiMessage; /** identifies the exact message, to store it once however often it is seen */ hash: Buffer }
  | { ok: false; reason: string }

export const MAX_MESSAGE_BYTES = 1_048_576
const MAX_TEXT = 2_000

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 1_000_000
}

function optionalText(value: unknown): string | null | undefined {
  if (value === null || value === undefined) return null
  return typeof value === 'string' ? storableText(value.slice(0, MAX_TEXT)) : undefined
}

function parseProgress(source: Record<string, unknown>): Progress | undefined {
  const { current, total } = source
  const message = optionalText(source.message)
  if (!isCount(current) || !isCount(total) || message === undefined) return undefined
  return { current, total, message }
}

/** Checks one raw message against the contract. Never throws: a bad message is a reason, not a crash. */
export function parseAiMessage(raw: string): ParsedMessage {
  if (Buffer.byteLength(raw) > MAX_MESSAGE_BYTES) return { ok: false, reason: 'message larger than 1 MB' }
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return { ok: false, reason: 'message is not valid JSON' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'message is not a JSON object' }
  const m = value as Record<string, unknown>
  const jobId = optionalText(m.job_id)
  if (jobId === undefined) return { ok: false, reason: 'job_id is not a string' }
  const hash = digest('sha256', raw, 'buffer')

  switch (m.status) {
    case 'processing': {
      if (typeof m.progress !== 'object' || m.progress === null) return { ok: false, reason: 'processing message without a progress object' }
      const progress = parseProgress(m.progress as Record<string, unknown>)
      if (!progress) return { ok: false, reason: 'processing message with invalid progress fields' }
      return { ok: true, hash, message: { status: 'processing', jobId, progress } }
    }
    case 'partial_result': {
      const progress = parseProgress(m)
      if (!progress) return { ok: false, reason: 'partial_result message with invalid current/total/message' }
      const result = normalizeResult(m.single_classification)
      return { ok: true, hash, message: { status: 'partial_result', jobId, progress, result, partnumber: resultPartnumber(result) } }
    }
    case 'failed': {
      const error = optionalText(m.error)
      if (error === undefined) return { ok: false, reason: 'failed message whose error is not a string' }
      return { ok: true, hash, message: { status: 'failed', jobId, error } }
    }
    case 'done': {
      const result = m.result === undefined || m.result === null ? null : normalizeResult(m.result)
      return { ok: true, hash, message: { status: 'done', jobId, result, partnumber: result ? resultPartnumber(result) : null } }
    }
    default:
      return { ok: false, reason: `unknown status ${JSON.stringify(m.status)?.slice(0, 40)}` }
  }
}

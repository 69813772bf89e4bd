import { Type, type Static } from '@sinclair/typebox'

// The AI server's side of shared/contract/ai-server.md: what it accepts and what it publishes.

const NullableString = Type.Union([Type.String(), Type.Null()])

export const ResultSchema = Type.Object({
  partnumber: NullableString,
  ncm: NullableString,
  description: NullableString,
  exception: NullableString,
  nve: NullableString,
  fabricante: NullableString,
  endereco: NullableString,
  pais: NullableString,
  confidence_score: Type.Union([Type.Number(), Type.Null()]),
})
export type Result = Static<typeof ResultSchema>

const ProgressChannel = Type.String({ minLength: 1 })
const PartNumber = Type.String({ minLength: 1 })

export const SingleRequestSchema = Type.Object({
  progress_channel: ProgressChannel,
  partnumber: PartNumber,
  description: Type.Optional(NullableString),
  manufacturer: Type.Optional(NullableString),
  supplier: Type.Optional(NullableString),
})

export const BatchRequestSchema = Type.Object({
  progress_channel: ProgressChannel,
  partnumbers: Type.Record(
    Type.String(),
    Type.Object({
      partnumber: PartNumber,
      description: Type.Optional(NullableString),
      manufacturer: Type.Optional(NullableString),
      supplier: Type.Optional(NullableString),
    }),
    { minProperties: 1 },
  ),
})

export const SINGLE_ENDPOINT = '/process/single_partnumber'
export const BATCH_ENDPOINT = '/process/batch_partnumbers'

// Message builders. Like the real server, progress messages and a single job's
// failure carry `job_id: null` (see messages/single-processing.json, single-failed.json).

export function processingMessage(current: number, total: number, message: string) {
  return { status: 'processing', job_id: null, progress: { current, total, message } }
}

export function partialResultMessage(jobId: string, current: number, total: number, partnumber: string, classification: Result) {
  return {
    status: 'partial_result',
    job_id: jobId,
    current,
    total,
    message: `Classificacao encontrada para o partnumber ${partnumber}`,
    single_classification: classification,
  }
}

export function singleFailedMessage(error: string) {
  return { status: 'failed', job_id: null, error }
}

export function batchItemFailedMessage(jobId: string, error: string | null) {
  return { status: 'failed', job_id: jobId, error }
}

export function singleDoneMessage(jobId: string, result: Result) {
  return { status: 'done', job_id: jobId, result }
}

export function batchDoneMessage(jobId: string) {
  return { status: 'done', job_id: jobId }
}

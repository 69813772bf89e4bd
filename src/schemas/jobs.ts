import { Type } from '@sinclair/typebox'
import { Nullable, PlainText, Timestamp, Uuid } from './common.js'

export const Manufacturer = Type.Object({ name: Type.String(), address: Nullable(Type.String()), country: Nullable(Type.String()) })

export const NcmCheckSchema = Type.Object({
  status: Type.Union([Type.Literal('VALID'), Type.Literal('UNKNOWN'), Type.Literal('EXPIRED'), Type.Literal('NOT_LEAF')], {
    description: 'VALID: an item in force of the official NCM table; UNKNOWN: not in it; EXPIRED: no longer in force; NOT_LEAF: a heading, not an item',
  }),
  table_version: Nullable(Type.String({ description: 'The version of the official table checked against; null: no table loaded' })),
  description: Nullable(Type.String({ description: 'The official description' })),
  path: Type.Array(Type.Object({ code: Type.String(), description: Type.String() }), { description: 'From chapter to item, with the official descriptions' }),
  ipi: Nullable(Type.Number({ description: 'The IPI rate (TIPI), percent, when known' })),
}, { $id: 'NcmCheck', description: 'The code checked against the current official NCM table when the result is read' })

export const Classification = Type.Object({
  id: Uuid,
  partnumber: Type.String(),
  ncm: Type.String({ description: '8-digit NCM code', examples: ['85412120'] }),
  ncm_formatted: Type.String({ examples: ['8541.21.20'] }),
  ex: Nullable(Type.String({ description: 'Ex-TIPI code' })),
  nve: Nullable(Type.String()),
  description: Nullable(Type.String()),
  manufacturer: Nullable(Manufacturer),
  confidence: Nullable(Type.Number({ minimum: 0, maximum: 1 })),
  status: Type.Union([Type.Literal('ACTIVE'), Type.Literal('PENDING'), Type.Literal('REJECTED'), Type.Literal('REPLACED')], {
    description: 'ACTIVE: the part number\'s accepted classification; PENDING: stored, waiting for review (see review_reasons); REJECTED by a reviewer; REPLACED by a newer one',
  }),
  review_reasons: Type.Array(Type.Object({
    code: Type.Union([
      Type.Literal('partnumber_mismatch'), Type.Literal('attributed_by_order'),
      Type.Literal('ncm_unknown'), Type.Literal('ncm_expired'), Type.Literal('ncm_not_leaf'),
    ]),
    message: Type.String(),
  }), { description: 'Why the result waits for review; empty when it was accepted at once' }),
  answered_partnumber: Nullable(Type.String({ description: 'The part number the AI server\'s answer named, when it is not the one asked for' })),
  ncm_check: Type.Ref(NcmCheckSchema),
  correction: Nullable(Type.Object({
    previous_ncm: Type.String({ description: 'The code before the correction' }),
    corrected_by: Uuid,
    corrected_at: Timestamp,
  }, { description: 'The latest correction of the code by a person (PATCH /classifications/:id {ncm}); null: the code is the AI server\'s' })),
  job_id: Nullable(Uuid),
  created_at: Timestamp,
  reviewed_at: Nullable(Timestamp),
}, { $id: 'Classification' })

export const JobStatus = Type.Union([Type.Literal('QUEUED'), Type.Literal('RUNNING'), Type.Literal('DONE'), Type.Literal('FAILED')])
export const JobKind = Type.Union([Type.Literal('SINGLE'), Type.Literal('BATCH')])

const JobInput = Type.Object({ description: Nullable(Type.String()), manufacturer: Nullable(Type.String()), supplier: Nullable(Type.String()) })

export const BatchItem = Type.Object({
  partnumber: Type.String(),
  position: Type.Integer(),
  status: Type.Union([Type.Literal('PENDING'), Type.Literal('DONE'), Type.Literal('FAILED')]),
  source: Nullable(Type.Union([Type.Literal('AI'), Type.Literal('HISTORY')])),
  input: JobInput,
  result: Nullable(Type.Ref(Classification)),
  error: Nullable(Type.String()),
  finished_at: Nullable(Timestamp),
}, { $id: 'BatchItem' })

export const UnmatchedAnswer = Type.Object({
  reason: Type.Union([Type.Literal('no_item'), Type.Literal('item_answered')], {
    description: 'no_item: it named no item of this batch and none was waiting; item_answered: its item already had another answer',
  }),
  partnumber: Nullable(Type.String({ description: 'The part number the answer named' })),
  result: Nullable(Type.Object({
    partnumber: Nullable(Type.String()), ncm: Type.String(), ex: Nullable(Type.String()), nve: Nullable(Type.String()), description: Nullable(Type.String()),
    manufacturer: Nullable(Manufacturer), confidence: Nullable(Type.Number()),
  })),
  error: Nullable(Type.String()),
  message: Nullable(Type.String({ description: 'The AI server\'s text that came with it' })),
  received_at: Timestamp,
}, { $id: 'UnmatchedAnswer' })

export const BatchCounts = Type.Object({ total: Type.Integer(), done: Type.Integer(), failed: Type.Integer(), pending: Type.Integer() })

export const Job = Type.Object({
  id: Uuid,
  kind: JobKind,
  status: JobStatus,
  source: Type.Union([Type.Literal('AI'), Type.Literal('HISTORY')], { description: 'HISTORY: answered from an accepted classification, without the AI server' }),
  partnumber: Nullable(Type.String()),
  input: JobInput,
  progress: Nullable(Type.Object({ current: Type.Integer(), total: Type.Integer(), message: Nullable(Type.String()) })),
  error: Nullable(Type.String()),
  timed_out: Type.Boolean({ description: 'FAILED by the gateway\'s deadline (no word from the AI server for JOB_DEADLINE); a late answer may still turn it DONE' }),
  result: Nullable(Type.Ref(Classification)),
  attempt: Type.Integer(),
  owner_id: Uuid,
  document_id: Nullable(Uuid),
  items: Type.Optional(Type.Array(Type.Ref(BatchItem), { description: 'batch jobs: every item, in order' })),
  counts: Type.Optional(BatchCounts),
  unmatched_answers: Type.Optional(Type.Array(Type.Ref(UnmatchedAnswer), { description: 'batch jobs: answers of the AI server that no item could take, kept' })),
  created_at: Timestamp,
  updated_at: Timestamp,
  last_activity_at: Type.Optional(Timestamp),
  finished_at: Nullable(Timestamp),
  events_url: Type.Optional(Type.String({ description: 'SSE stream of this job, with a short-lived token scoped to it' })),
}, { $id: 'Job' })

const ItemRequest = Type.Object({
  partnumber: PlainText(100, 1),
  description: Type.Optional(Nullable(PlainText(2000))),
  manufacturer: Type.Optional(Nullable(PlainText(300))),
  supplier: Type.Optional(Nullable(PlainText(300))),
}, { additionalProperties: false })

export const BatchBody = Type.Union([
  Type.Object({
    partnumbers: Type.Array(ItemRequest, { minItems: 1, maxItems: 10_000 }),
    reclassify: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false }),
  Type.Object({
    document_id: Uuid,
    partnumbers: Type.Optional(Type.Array(PlainText(100, 1), { minItems: 1, maxItems: 10_000, description: 'a subset of the document\'s part numbers' })),
    reclassify: Type.Optional(Type.Boolean()),
  }, { additionalProperties: false }),
])

export const ClassifyBody = Type.Object({
  partnumber: PlainText(100, 1),
  description: Type.Optional(PlainText(2000)),
  manufacturer: Type.Optional(PlainText(300)),
  supplier: Type.Optional(PlainText(300)),
  reclassify: Type.Optional(Type.Boolean({ description: 'Ask the AI server even if the part number already has an accepted classification' })),
}, { additionalProperties: false })

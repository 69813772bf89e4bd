import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { stringify } from 'csv-stringify/sync'
import { errorResponses, IdParams, Nullable } from '../../schemas/common.js'
import { getJobView, type JobView } from '../../services/jobs/jobs-store.js'
import { neutraliseFormula } from '../../services/export/neutralise-formula.js'
import { resultRows, type ResultRow } from '../../services/export/result-rows.js'
import { notFound } from '../../http-errors.js'
import { canSee } from './job-response.js'

const ResultRowSchema = Type.Object({
  partnumber: Nullable(Type.String({ description: 'The item\'s part number; for an UNMATCHED row the one the answer named, if any' })),
  ncm: Nullable(Type.String()), ex: Nullable(Type.String()), description: Nullable(Type.String()),
  manufacturer: Nullable(Type.String()), country: Nullable(Type.String()), confidence: Nullable(Type.Number()),
  status: Type.Union([Type.Literal('DONE'), Type.Literal('FAILED'), Type.Literal('PENDING'), Type.Literal('UNMATCHED')], {
    description: 'The item\'s status; UNMATCHED: an answer of the AI server that no item of the batch could take',
  }),
  classification_status: Nullable(Type.Union([Type.Literal('ACTIVE'), Type.Literal('PENDING'), Type.Literal('REJECTED'), Type.Literal('REPLACED')], {
    description: 'The status of the item\'s classification now; PENDING: it waits for review (PATCH /classifications/:id)',
  })),
  review_reasons: Type.Array(Type.String(), {
    description: 'Codes: the classification\'s review reasons (partnumber_mismatch, attributed_by_order, ncm_unknown, ncm_expired, ncm_not_leaf); for UNMATCHED rows why no item took it (no_item, item_answered)',
  }),
  answered_partnumber: Nullable(Type.String({ description: 'The part number the AI server\'s answer named, when it is not the item\'s' })),
  error: Nullable(Type.String()),
  message: Nullable(Type.String({ description: 'UNMATCHED rows: the AI server\'s text that came with the answer' })),
  ncm_check_status: Nullable(Type.Union([Type.Literal('VALID'), Type.Literal('UNKNOWN'), Type.Literal('EXPIRED'), Type.Literal('NOT_LEAF')], {
    description: 'The code checked against the current official NCM table; null without a classification (and for UNMATCHED rows)',
  })),
  ncm_official_description: Nullable(Type.String({ description: 'The code\'s official description in the NCM table' })),
  ipi: Nullable(Type.Number({ description: 'The code\'s IPI rate (TIPI), percent, when known' })),
})

// The columns of before keep their places (a spreadsheet may refer to them by letter); the review's come after.
const CSV_COLUMNS: Array<[keyof ResultRow, string]> = [
  ['partnumber', 'Part number'], ['ncm', 'NCM'], ['ex', 'Ex'], ['description', 'Descrição'], ['manufacturer', 'Fabricante'],
  ['country', 'País'], ['confidence', 'Confiança'], ['status', 'Situação'], ['error', 'Erro'],
  ['classification_status', 'Situação da classificação'], ['review_reasons', 'Motivos de revisão'],
  ['answered_partnumber', 'Part number respondido'], ['message', 'Mensagem do servidor'],
  ['ncm_check_status', 'Verificação NCM'], ['ncm_official_description', 'Descrição oficial NCM'], ['ipi', 'Alíquota IPI (%)'],
]

/** A row as the CSV writes it: the review reasons' codes joined with `;`, empty when there are none. */
const csvRow = (row: ResultRow) => ({ ...row, review_reasons: row.review_reasons.length ? row.review_reasons.join(';') : null })

/** GET /jobs/:id/results.csv and .json: the results of a job, for spreadsheets and programs. */
const results: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  app.addHook('onRequest', app.authenticate)

  async function visibleJob(request: Parameters<typeof canSee>[0], id: string): Promise<JobView> {
    const job = await getJobView(pool, id)
    if (!job || !canSee(request, job.owner_id)) throw notFound('job')
    return job
  }

  app.get('/jobs/:id/results.csv', {
    schema: {
      tags: ['jobs'], summary: 'Results as CSV for a spreadsheet set to Portuguese',
      description: 'UTF-8 with BOM, `;` separators, decimal comma for the confidence. Text cells are quoted, and one that a spreadsheet '
        + 'would read as a formula (starting with = + - @, a tab or a carriage return, also behind spaces or quotes) starts with `\'`.\n\n'
        + 'One row per item, in order, then one per answer of the AI server that no item of the batch could take (Situação `UNMATCHED`: '
        + 'the part number it named, its NCM if it carried one, the error or the server\'s text). Columns: Part number; NCM; Ex; Descrição; '
        + 'Fabricante; País; Confiança; Situação (DONE, FAILED, PENDING, UNMATCHED); Erro; Situação da classificação (ACTIVE, PENDING: '
        + 'waits for review, REJECTED, REPLACED); Motivos de revisão (codes joined with `;`: partnumber_mismatch, attributed_by_order, or '
        + 'for UNMATCHED rows no_item, item_answered); Part number respondido (the part number the answer named instead); Mensagem do servidor; '
        + 'Verificação NCM (the code checked against the current official NCM table: VALID, UNKNOWN, EXPIRED, NOT_LEAF); '
        + 'Descrição oficial NCM (the official description); Alíquota IPI (%) (the TIPI rate, when known).',
      params: IdParams,
      response: { 200: Type.String({ description: 'text/csv' }), ...errorResponses(400, 401, 404) },
    },
  }, async (request, reply) => {
    const job = await visibleJob(request, request.params.id)
    const csv = stringify(resultRows(job).map(csvRow), {
      bom: true,
      delimiter: ';',
      header: true,
      record_delimiter: 'windows',
      columns: CSV_COLUMNS.map(([key, header]) => ({ key, header })),
      // Text from users and from the AI server is never a formula, and is quoted whole (OWASP's
      // advice), so that no cell can start inside it; numbers stay numbers.
      quoted_string: true,
      cast: { string: neutraliseFormula, number: (value) => String(value).replace('.', ',') },
    })
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="nexa-${job.id}.csv"`)
      .send(csv)
  })

  app.get('/jobs/:id/results.json', {
    schema: {
      tags: ['jobs'], summary: 'Results as JSON, one entry per part number',
      description: 'The rows of results.csv with their values as they are: one per item, in order, then one per answer of the AI '
        + 'server no item could take (status `UNMATCHED`); `review_reasons` is an array of codes.',
      params: IdParams,
      response: { 200: Type.Object({ job_id: Type.String(), status: Type.String(), results: Type.Array(ResultRowSchema) }), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const job = await visibleJob(request, request.params.id)
    return { job_id: job.id, status: job.status, results: resultRows(job) }
  })
}

export default results

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { stringify } from 'csv-stringify/sync'
import { errorResponses, IdParams, Nullable } from '../../schemas/common.js'
import { getJobView, type JobView } from '../../services/jobs/jobs-store.js'
import { neutraliseFormula } from '../../services/export/neutralise-formula.js'
import { notFound } from '../../http-errors.js'
import { canSee } from './job-response.js'

interface ResultRow {
  partnumber: string
  ncm: string | null
  ex: string | null
  description: string | null
  manufacturer: string | null
  country: string | null
  confidence: number | null
  status: string
  error: string | null
}

const ResultRowSchema = Type.Object({
  partnumber: Type.String(), ncm: Nullable(Type.String()), ex: Nullable(Type.String()), description: Nullable(Type.String()),
  manufacturer: Nullable(Type.String()), country: Nullable(Type.String()), confidence: Nullable(Type.Number()), status: Type.String(), error: Nullable(Type.String()),
})

/** One row per part number of the job: a batch's items, or a single job's one result. */
function resultRows(job: JobView): ResultRow[] {
  const entries = job.items
    ?? [{ partnumber: job.partnumber ?? '', status: job.status === 'DONE' ? 'DONE' : job.status === 'FAILED' ? 'FAILED' : 'PENDING', result: job.result, error: job.error }]
  return entries.map((e) => ({
    partnumber: e.partnumber,
    ncm: e.result?.ncm_formatted ?? null,
    ex: e.result?.ex ?? null,
    description: e.result?.description ?? null,
    manufacturer: e.result?.manufacturer?.name ?? null,
    country: e.result?.manufacturer?.country ?? null,
    confidence: e.result?.confidence ?? null,
    status: e.status,
    error: e.error,
  }))
}

const CSV_COLUMNS: Array<[keyof ResultRow, string]> = [
  ['partnumber', 'Part number'], ['ncm', 'NCM'], ['ex', 'Ex'], ['description', 'Descrição'], ['manufacturer', 'Fabricante'],
  ['country', 'País'], ['confidence', 'Confiança'], ['status', 'Situação'], ['error', 'Erro'],
]

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
        + 'would read as a formula (starting with = + - @, a tab or a carriage return, also behind spaces or quotes) starts with `\'`.',
      params: IdParams,
      response: { 200: Type.String({ description: 'text/csv' }), ...errorResponses(400, 401, 404) },
    },
  }, async (request, reply) => {
    const job = await visibleJob(request, request.params.id)
    const csv = stringify(resultRows(job), {
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
      tags: ['jobs'], summary: 'Results as JSON, one entry per part number', params: IdParams,
      response: { 200: Type.Object({ job_id: Type.String(), status: Type.String(), results: Type.Array(ResultRowSchema) }), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const job = await visibleJob(request, request.params.id)
    return { job_id: job.id, status: job.status, results: resultRows(job) }
  })
}

export default results

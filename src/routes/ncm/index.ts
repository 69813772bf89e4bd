import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { errorResponses, Nullable, PlainText } from '../../schemas/common.js'
import { NcmEntry, NcmSearchHit } from '../../schemas/ncm.js'
import { lookupNcm, ncmTableInfo, NCM_SEARCH_MAX_OFFSET, searchNcm } from '../../services/ncm/ncm-table.js'
import { HttpError, notFound } from '../../http-errors.js'

function encodeOffset(offset: number): string {
  return Buffer.from(`o${offset}`).toString('base64url')
}
function decodeOffset(cursor: string): number {
  const m = /^o(\d{1,5})$/.exec(Buffer.from(cursor, 'base64url').toString())
  const offset = m ? Number(m[1]) : NaN
  if (!(offset >= 0 && offset <= NCM_SEARCH_MAX_OFFSET)) throw new HttpError(400, 'invalid_cursor', 'cursor is not one this API returned')
  return offset
}

/** The official NCM table for reviewers: look-up with the path from the chapter, and search. */
const ncm: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  app.addHook('onRequest', app.authenticate)

  app.get('/ncm', {
    schema: {
      tags: ['ncm'], summary: 'Search the official NCM descriptions (Portuguese, without regard to accents or case), best first',
      description: 'Words match with their Portuguese stems ("circuito" finds "circuitos"), or the query is found as it is inside a '
        + `description. Pages follow \`next_cursor\`, up to ${NCM_SEARCH_MAX_OFFSET} results deep.`,
      querystring: Type.Object({
        q: PlainText(200, 2),
        limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
        cursor: Type.Optional(Type.String({ maxLength: 40, pattern: '^[A-Za-z0-9_-]+$' })),
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          items: Type.Array(Type.Ref(NcmSearchHit)),
          total: Type.Integer({ description: 'how many entries match' }),
          next_cursor: Nullable(Type.String()),
          table_version: Nullable(Type.String()),
        }),
        ...errorResponses(400, 401),
      },
    },
  }, async (request) => {
    const { q, limit, cursor } = request.query
    const offset = cursor ? decodeOffset(cursor) : 0
    const [{ items, total }, info] = await Promise.all([searchNcm(pool, q, limit, offset), ncmTableInfo(pool)])
    const next = offset + items.length
    return { items, total, next_cursor: items.length === limit && next < total && next <= NCM_SEARCH_MAX_OFFSET ? encodeOffset(next) : null, table_version: info?.table_version ?? null }
  })

  app.get('/ncm/:code', {
    schema: {
      tags: ['ncm'], summary: 'One entry of the official NCM table, with its path from the chapter, dates, act and IPI rate',
      description: 'The code with or without dots: `8542.31.90` or `85423190`; chapters, headings and subheadings too (`85`, `85.42`, `8542.31`).',
      params: Type.Object({ code: Type.String({ minLength: 2, maxLength: 12, pattern: '^[0-9][0-9.]*$' }) }),
      response: { 200: Type.Ref(NcmEntry), ...errorResponses(400, 401, 404) },
    },
  }, async (request) => {
    const entry = await lookupNcm(pool, request.params.code)
    if (!entry) throw notFound('ncm')
    return entry
  })
}

export default ncm

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { Classification } from '../../schemas/jobs.js'
import { errorResponses, Nullable, PlainText, Timestamp } from '../../schemas/common.js'
import { normalizePartnumber } from '../../services/classifications/classifications-store.js'
import { partnumberHistory, searchPartnumbers } from '../../services/classifications/partnumbers-store.js'
import { notFound } from '../../http-errors.js'

/** The shared history of part numbers: every signed-in user may search it. */
const partnumbers: FastifyPluginAsyncTypebox = async (app) => {
  const pool = app.pg.pool
  app.addHook('onRequest', app.authenticate)

  app.get('/partnumbers', {
    schema: {
      tags: ['partnumbers'], summary: 'Search classified part numbers (case-insensitive, anywhere in the code)',
      querystring: Type.Object({
        q: Type.Optional(PlainText(100)),
        limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
        after: Type.Optional(PlainText(100, 1)),
      }, { additionalProperties: false }),
      response: {
        200: Type.Object({
          items: Type.Array(Type.Object({
            partnumber: Type.String(),
            accepted: Nullable(Type.Ref(Classification)),
            classifications: Type.Integer(),
            last_classified_at: Nullable(Timestamp),
          })),
          next_after: Nullable(Type.String()),
        }),
        ...errorResponses(400, 401),
      },
    },
  }, async (request) => {
    const { q, limit, after } = request.query
    const items = await searchPartnumbers(pool, normalizePartnumber(q ?? ''), limit, after ? normalizePartnumber(after) : undefined)
    return { items, next_after: items.length === limit ? items.at(-1)!.partnumber : null }
  })

  app.get('/partnumbers/:code', {
    schema: {
      tags: ['partnumbers'], summary: 'Every classification of a part number, newest first, and the accepted one',
      description: '`classifications` lists every result, whatever its status: PENDING ones (waiting for review, with their '
        + '`review_reasons` and `answered_partnumber`) as well as REJECTED and REPLACED ones. `accepted` is the ACTIVE one only, the one a '
        + 'request for the part number is answered with from history; a PENDING result is never used until a reviewer accepts it '
        + '(PATCH /classifications/:id).',
      params: Type.Object({ code: PlainText(100, 1) }),
      response: {
        200: Type.Object({ partnumber: Type.String(), accepted: Nullable(Type.Ref(Classification)), classifications: Type.Array(Type.Ref(Classification)) }),
        ...errorResponses(400, 401, 404),
      },
    },
  }, async (request) => {
    const code = normalizePartnumber(request.params.code)
    const classifications = await partnumberHistory(pool, code)
    if (!classifications) throw notFound('partnumber')
    return { partnumber: code, accepted: classifications.find((c) => c.status === 'ACTIVE') ?? null, classifications }
  })
}

export default partnumbers

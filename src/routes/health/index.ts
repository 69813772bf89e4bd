import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { isDatabaseBusy } from '../../db/errors.js'

const Check = Type.Union([Type.Literal('ok'), Type.Literal('unavailable')])

const health: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/health', {
    schema: { tags: ['operations'], summary: 'The process is up', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }))

  app.get('/ready', {
    schema: {
      tags: ['operations'], summary: 'PostgreSQL and the message bus are reachable and answer (503 when not)', security: [],
      response: {
        200: Type.Object({ status: Type.Literal('ready'), database: Check, bus: Check }),
        503: Type.Object({ status: Type.Literal('not_ready'), database: Check, bus: Check }),
      },
    },
  }, async (_request, reply) => {
    const [database, bus] = await Promise.all([
      app.pg.pool.query('SELECT 1').then(() => 'ok' as const, (err: unknown) => {
        // A busy pool is a reachable database (unless an outage is known already).
        if (isDatabaseBusy(err)) return app.database.available ? 'ok' as const : 'unavailable' as const
        app.database.markUnavailable()
        return 'unavailable' as const
      }),
      // Connected is not enough: a frozen Redis keeps its connections and answers nothing.
      (async () => (app.bus.isConnected() && await app.bus.responds() ? 'ok' as const : 'unavailable' as const))(),
    ])
    const ready = database === 'ok' && bus === 'ok'
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', database, bus })
  })
}

export default health

import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import type { RequestLog } from './request-log.js'
import { ScenarioSchema, type ScenarioStore } from './scenarios.js'

export interface ControlRoutesOptions {
  /** Absent for a profile without scenarios. */
  scenarios?: ScenarioStore
  requests: RequestLog
}

/** Test-only endpoints under /_sim: register misbehaviours, inspect what the AI server was asked. */
export async function controlRoutes(app: FastifyInstance, { scenarios, requests }: ControlRoutesOptions): Promise<void> {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()

  if (scenarios) {
    typed.put(
      '/_sim/scenarios/:partnumber',
      { schema: { params: Type.Object({ partnumber: Type.String({ minLength: 1 }) }), body: ScenarioSchema } },
      async (request, reply) => {
        if (!scenarios.set(request.params.partnumber, request.body)) {
          return reply.code(400).send({ error: 'too many scenarios; DELETE /_sim/scenarios first' })
        }
        return reply.code(204).send()
      },
    )

    typed.delete('/_sim/scenarios', async (_request, reply) => {
      scenarios.clear()
      return reply.code(204).send()
    })
  }

  typed.get('/_sim/requests', async () => ({ requests: requests.list() }))

  typed.delete('/_sim/requests', async (_request, reply) => {
    requests.clear()
    return reply.code(204).send()
  })
}

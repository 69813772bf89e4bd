import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BATCH_ENDPOINT, BatchRequestSchema, SINGLE_ENDPOINT, SingleRequestSchema } from './contract.js'
import type { JobPlayer } from './job-player.js'
import type { RequestLog } from './request-log.js'
import { BATCH_KEY, type JobPlan, type Scenario, type ScenarioStore } from './scenarios.js'
import { batchTimeline, singleTimeline, type Timeline } from './timelines.js'

export interface ContractRoutesOptions {
  scenarios: ScenarioStore
  requests: RequestLog
  player: JobPlayer
  defaultSteps: number
  defaultStepMs: number
}

/** The two endpoints of the AI server contract, answering as the registered scenario says. */
export async function contractRoutes(app: FastifyInstance, options: ContractRoutesOptions): Promise<void> {
  const { scenarios, requests, player, defaultSteps, defaultStepMs } = options
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()

  typed.post(
    SINGLE_ENDPOINT,
    {
      schema: { body: SingleRequestSchema },
      // Before validation, so rejected payloads are logged too.
      preValidation: async (request) => requests.record(SINGLE_ENDPOINT, request.body),
    },
    async (request, reply) => {
      const { progress_channel: channel, partnumber } = request.body
      const plan = scenarios.plan([partnumber])
      return answer(reply, plan, channel, (jobId) => singleTimeline(jobId, partnumber, plan.scenario, defaultSteps))
    },
  )

  typed.post(
    BATCH_ENDPOINT,
    {
      schema: { body: BatchRequestSchema },
      preValidation: async (request) => requests.record(BATCH_ENDPOINT, request.body),
    },
    async (request, reply) => {
      const { progress_channel: channel } = request.body
      const partnumbers = Object.keys(request.body.partnumbers)
      const plan = scenarios.plan([...partnumbers, BATCH_KEY])
      return answer(reply, plan, channel, (jobId) => batchTimeline(jobId, partnumbers, plan.scenario))
    },
  )

  async function answer(reply: FastifyReply, plan: JobPlan, channel: string, timelineFor: (jobId: string) => Timeline) {
    switch (plan.start) {
      case 'reject':
        return reply.code(400).send({ error: 'Payload rejeitado pelo servidor de simulacao' })
      case 'error':
        return reply.code(500).send({ error: 'Erro interno no servidor de simulacao' })
      case 'unavailable':
        return reply.code(503).send({ error: 'Servidor de simulacao indisponivel' })
      case 'no_job_id':
        return reply.code(200).send({ error: 'Payload invalido' })
      case 'garbage':
        // Claims JSON but is not, like an error page from a proxy in front of the server.
        return reply.code(200).type('application/json').send('<html><body><h1>502 Bad Gateway</h1></body></html>')
      case 'hang':
        // The socket stays open until the client gives up or the simulator closes.
        return reply.hijack()
      case 'accept':
        return accept(reply, plan.scenario, channel, timelineFor)
    }
  }

  async function accept(reply: FastifyReply, scenario: Scenario, channel: string, timelineFor: (jobId: string) => Timeline) {
    const jobId = `job-${randomUUID()}`
    const timeline = timelineFor(jobId)
    const stepMs = scenario.stepMs ?? defaultStepMs
    const early = Math.min(stepsBeforeAnswer(scenario), timeline.length)
    if (!(await player.play(channel, timeline, stepMs, 0, early))) {
      return reply.code(500).send({ error: 'Falha ao publicar o progresso' })
    }
    // Answer first, then publish the rest: only publishBeforeAnswer puts messages ahead of the 202.
    reply.code(202).send({ job_id: jobId })
    void player.play(channel, timeline, stepMs, early)
    return reply
  }
}

function stepsBeforeAnswer({ publishBeforeAnswer }: Scenario): number {
  if (publishBeforeAnswer === true) return 1
  return publishBeforeAnswer || 0
}

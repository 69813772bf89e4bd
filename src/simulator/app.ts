import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { MessageBus } from '../services/bus/message-bus.js'
import { contractRoutes } from './contract-routes.js'
import { controlRoutes } from './control-routes.js'
import { JobPlayer } from './job-player.js'
import { RealServerJobs, type RealServerOptions } from './real-server-jobs.js'
import { realServerRoutes } from './real-server-routes.js'
import { RequestLog } from './request-log.js'
import { ScenarioStore } from './scenarios.js'

export interface SimulatorOptions {
  /** Where progress messages are published, as the real AI server does with Redis PUBLISH. */
  bus: MessageBus
  /** Progress steps of a single job: messages 0..steps, then the result (default 5). */
  steps?: number
  /** Pause between two steps of a job (default 200 ms). */
  stepMs?: number
  /**
   * `contract` (default): shared/contract/ai-server.md, with per-part-number scenarios.
   * `real-server`: what the real AI server's code does (src/simulator/real-server-jobs.ts);
   * it has no scenarios (its answers follow the part number) and ignores steps and stepMs.
   */
  profile?: SimulatorProfile
  /** Settings of the real-server profile. */
  realServer?: RealServerOptions
  logger?: FastifyServerOptions['logger']
}

export const SIMULATOR_PROFILES = ['contract', 'real-server'] as const
export type SimulatorProfile = (typeof SIMULATOR_PROFILES)[number]

const MAX_SCENARIOS = 10_000
const MAX_LOGGED_REQUESTS = 10_000
// Large enough for big batches and for the oversize messages tests inject.
const BODY_LIMIT = 64 * 1024 * 1024

/**
 * A stand-in for the external AI server: by default the contract (shared/contract/ai-server.md) with
 * per-part-number misbehaviours for tests; with `profile: 'real-server'`, the real server's code.
 */
export async function buildSimulator(options: SimulatorOptions): Promise<FastifyInstance> {
  const steps = checkedCount('steps', options.steps ?? 5)
  const stepMs = checkedCount('stepMs', options.stepMs ?? 200)

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: BODY_LIMIT,
    // Hanging requests (scenario start "hang") must not keep close() waiting.
    forceCloseConnections: true,
    // Strict inputs: a typo in a scenario must fail loudly, not be dropped or coerced.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    schemaErrorFormatter: (errors, dataVar) =>
      new Error(errors.map((e) => `${dataVar}${e.instancePath} ${e.message}${'additionalProperty' in e.params ? `: ${e.params.additionalProperty}` : ''}`).join(', ')),
  })

  const requests = new RequestLog(MAX_LOGGED_REQUESTS)
  if (options.profile === 'real-server') {
    const jobs = new RealServerJobs(options.bus, app.log, options.realServer)
    app.addHook('preClose', async () => jobs.stop())
    app.setErrorHandler(jsonErrors)
    await app.register(realServerRoutes, { requests, jobs })
    await app.register(controlRoutes, { requests })
    return app
  }

  const scenarios = new ScenarioStore(MAX_SCENARIOS)
  const player = new JobPlayer(options.bus, app.log)
  // Cancel pending steps first, so no job publishes while (or after) the app closes.
  app.addHook('preClose', async () => player.stop())

  app.setErrorHandler(jsonErrors)

  await app.register(contractRoutes, { scenarios, requests, player, defaultSteps: steps, defaultStepMs: stepMs })
  await app.register(controlRoutes, { scenarios, requests })
  return app
}

// The contract's error shape, {"error": "..."}, for every failure, validation included.
function jsonErrors(this: FastifyInstance, err: { statusCode?: number; message: string }, request: FastifyRequest, reply: FastifyReply) {
  const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500
  if (status >= 500) request.log.error({ err }, 'simulator failure')
  return reply.code(status).send({ error: err.message })
}

function checkedCount(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`)
  return value
}

import { classify, failsInBatch } from './catalog.js'
import {
  batchDoneMessage,
  batchItemFailedMessage,
  partialResultMessage,
  processingMessage,
  singleDoneMessage,
  singleFailedMessage,
  type Result,
} from './contract.js'
import type { Injection, Scenario } from './scenarios.js'

/**
 * Everything a job publishes, decided when it starts: one list of raw messages per
 * step, the steps `stepMs` apart. A timeline that ends without a terminal message
 * is a job gone silent.
 */
export type Timeline = string[][]

const FIRST_STAGE = 'Recebendo requisicao no servidor Nexa-IA'
const MIDDLE_STAGES = [
  'Analisando dados no servidor Nexa-IA',
  'Buscando partnumber na base de fabricantes',
  'Consultando a nomenclatura NCM',
  'Validando a classificacao fiscal',
]
const LAST_STAGE = 'Finalizando classificacao'

const NOT_FOUND = 'Partnumber nao encontrado na base de dados de simulacao'

/** Step t publishes progress t of `steps`, then comes `done` (or `failed`, or nothing, as the scenario says). */
export function singleTimeline(jobId: string, partnumber: string, scenario: Scenario, defaultSteps: number): Timeline {
  const steps = scenario.steps ?? defaultSteps
  const progress = (count: number): Timeline =>
    Array.from({ length: Math.min(count, steps + 1) }, (_, current) => [json(processingMessage(current, steps, stageMessage(current, steps)))])

  let timeline: Timeline
  switch (scenario.outcome ?? 'done') {
    case 'done':
      timeline = [...progress(steps + 1), [json(singleDoneMessage(jobId, resultFor(partnumber, scenario)))]]
      break
    case 'fail':
      timeline = [...progress(scenario.failAfter ?? 1), [json(singleFailedMessage(NOT_FOUND))]]
      break
    case 'silent':
      timeline = progress(scenario.silentAfter ?? 1)
      break
  }
  return withInjections(timeline, jobId, scenario.inject)
}

/** Step 0 announces the batch; step i answers item i (a partial result or a failure); then `done`. */
export function batchTimeline(jobId: string, partnumbers: string[], scenario: Scenario): Timeline {
  const total = partnumbers.length
  const failing = new Set(scenario.failItems)
  const failingWithoutName = new Set(scenario.failWithoutName)
  const answered = Math.min(scenario.stopAfterItems ?? (scenario.doneEarly ? total - 1 : total), total)

  const itemMessage = (partnumber: string, current: number) => {
    if (failingWithoutName.has(partnumber)) return batchItemFailedMessage(jobId, null)
    if (failing.has(partnumber) || failsInBatch(partnumber)) return batchItemFailedMessage(jobId, `Erro ao processar partnumber${partnumber}`)
    return partialResultMessage(jobId, current, total, partnumber, resultFor(partnumber, scenario))
  }

  const timeline: Timeline = [[json(processingMessage(0, total, `Iniciando classificacao de ${total} partnumbers`))]]
  partnumbers.slice(0, answered).forEach((partnumber, index) => {
    timeline.push([
      json(processingMessage(index, total, `Classificando partnumber ${partnumber}`)),
      json(itemMessage(partnumber, index + 1)),
    ])
  })
  if (answered === total || scenario.doneEarly) timeline.push([json(batchDoneMessage(jobId))])
  return withInjections(timeline, jobId, scenario.inject)
}

function stageMessage(current: number, total: number): string {
  if (current === 0) return FIRST_STAGE
  if (current >= total) return LAST_STAGE
  return MIDDLE_STAGES[(current - 1) % MIDDLE_STAGES.length]!
}

function resultFor(partnumber: string, scenario: Scenario): Result {
  return { ...classify(partnumber), ...scenario.result }
}

function withInjections(timeline: Timeline, jobId: string, injections: Injection[] = []): Timeline {
  for (const injection of injections) {
    while (timeline.length <= injection.afterStep) timeline.push([])
    timeline[injection.afterStep]!.push(injectedPayload(injection, jobId))
  }
  return timeline
}

function injectedPayload(injection: Injection, jobId: string): string {
  if ('raw' in injection) return injection.raw
  const { message } = injection
  return json('job_id' in message ? message : { ...message, job_id: jobId })
}

const json = (message: object) => JSON.stringify(message)

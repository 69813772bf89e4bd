import { Type, type Static } from '@sinclair/typebox'
import { ResultSchema } from './contract.js'

// Tests cannot pass options through the gateway (it forwards only contract fields),
// so they register a scenario under a part number before asking for it.

const Count = (description: string) => Type.Integer({ minimum: 0, maximum: 10_000, description })
const PartNumbers = (description: string) => Type.Array(Type.String({ minLength: 1 }), { maxItems: 10_000, description })

const StartBehaviourSchema = Type.Union(
  [
    Type.Literal('accept'), // 202 {job_id}
    Type.Literal('reject'), // 400 {error}
    Type.Literal('error'), // 500
    Type.Literal('unavailable'), // 503
    Type.Literal('hang'), // never answers
    Type.Literal('no_job_id'), // 200 {error}, like older servers
    Type.Literal('garbage'), // 200 with a body that is not JSON
  ],
  { description: 'How the start request is answered; anything but accept starts no job' },
)
export type StartBehaviour = Static<typeof StartBehaviourSchema>

const AfterStep = Type.Integer({ minimum: 0, maximum: 10_000, description: 'Published right after the regular messages of this step' })

const InjectionSchema = Type.Union([
  Type.Object({ afterStep: AfterStep, raw: Type.String({ description: 'Published verbatim' }) }, { additionalProperties: false }),
  Type.Object(
    {
      afterStep: AfterStep,
      message: Type.Record(Type.String(), Type.Unknown(), { description: 'Published as JSON, with the job id added unless it sets job_id itself' }),
    },
    { additionalProperties: false },
  ),
])
export type Injection = Static<typeof InjectionSchema>

export const ScenarioSchema = Type.Object(
  {
    start: Type.Optional(StartBehaviourSchema),
    failTimes: Type.Optional(Count('Answer with `start` this many times, then accept; without it `start` applies every time')),
    publishBeforeAnswer: Type.Optional(
      Type.Union([Type.Boolean(), Type.Integer({ minimum: 0, maximum: 10_000 })], {
        description: 'Publish this many steps (true: one) before sending the 202',
      }),
    ),
    steps: Type.Optional(Count('Single jobs: progress goes 0..steps')),
    stepMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 600_000, description: 'Pause between steps' })),
    outcome: Type.Optional(
      Type.Union([Type.Literal('done'), Type.Literal('fail'), Type.Literal('silent')], {
        description: 'Single jobs: how the job ends',
      }),
    ),
    failAfter: Type.Optional(Count('outcome fail: processing messages before the failure (default 1)')),
    silentAfter: Type.Optional(Count('outcome silent: processing messages before the silence (default 1)')),
    inject: Type.Optional(Type.Array(InjectionSchema, { maxItems: 1000 })),
    result: Type.Optional(Type.Partial(ResultSchema, { description: 'Fields replacing those of the catalogue result (every item of a batch)' })),
    failItems: Type.Optional(PartNumbers('Batch items that fail with "Erro ao processar partnumber<PN>"')),
    failWithoutName: Type.Optional(PartNumbers('Batch items that fail with error: null')),
    stopAfterItems: Type.Optional(Count('Batch: answer only this many items, then go silent (or send done, with doneEarly)')),
    doneEarly: Type.Optional(Type.Boolean({ description: 'Batch: send done before every item is answered (default: all but the last)' })),
  },
  { additionalProperties: false },
)
export type Scenario = Static<typeof ScenarioSchema>

/** Key under which a scenario applies to any batch without a scenario for one of its part numbers. */
export const BATCH_KEY = '*batch*'

interface Entry {
  scenario: Scenario
  failuresLeft: number
}

export interface JobPlan {
  scenario: Scenario
  start: StartBehaviour
}

export class ScenarioStore {
  readonly #entries = new Map<string, Entry>()

  constructor(private readonly limit: number) {}

  /** False when the store is full and `partnumber` is new. */
  set(partnumber: string, scenario: Scenario): boolean {
    const key = normalize(partnumber)
    if (!this.#entries.has(key) && this.#entries.size >= this.limit) return false
    this.#entries.set(key, { scenario, failuresLeft: scenario.failTimes ?? Infinity })
    return true
  }

  clear(): void {
    this.#entries.clear()
  }

  /** The scenario of the first key that has one, and how to answer this start request (counting down `failTimes`). */
  plan(keys: string[]): JobPlan {
    const entry = keys.map((k) => this.#entries.get(normalize(k))).find((e) => e !== undefined)
    if (!entry) return { scenario: {}, start: 'accept' }
    const start = entry.scenario.start ?? 'accept'
    if (start === 'accept' || entry.failuresLeft <= 0) return { scenario: entry.scenario, start: 'accept' }
    entry.failuresLeft -= 1
    return { scenario: entry.scenario, start }
  }
}

// Part numbers are case-insensitive; the gateway may normalise them before forwarding.
function normalize(partnumber: string): string {
  return partnumber.trim().toUpperCase()
}

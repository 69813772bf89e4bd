import { AsyncLocalStorage } from 'node:async_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { MessageBus } from '../services/bus/message-bus.js'
import { classify } from './catalog.js'
import { pythonJsonDumps } from './python-json.js'

// What the real AI server publishes, as its code does it: Titus-System/Nexa-AI-Agents at
// REAL_SERVER_COMMIT (a Flask app; its files are named below as they are in that repository).
// Only the language-model agent is simulated, and it is decided by the part number exactly as
// the peer runner's fake agent decides (test/peer/python/shim/fake_answers.py), so this profile
// and a peer run of the real code can be compared line by line (test/peer/README.md).

export const REAL_SERVER_REPOSITORY = 'Titus-System/Nexa-AI-Agents'
export const REAL_SERVER_COMMIT = 'c0872a79a88cb6da994f70dfffbecdf7faac09e4'

export interface RealServerOptions {
  /**
   * `as-written` (default): the code at REAL_SERVER_COMMIT, where agents/hooks/report.py
   * Report.send_successful_response passes (channel, job_id, result) to a publisher that takes
   * (channel, result, job_id), so pydantic refuses the message and execute() raises after every
   * agent run. `as-intended`: that call with its arguments in order, so execute() publishes its
   * `done` and returns (what issue 12 describes as seen).
   */
  variant?: 'as-written' | 'as-intended'
  /** How long an agent run lasts; the real one makes LLM calls of up to LITELLM_REQUEST_TIMEOUT (1,800 s) each. Default 60 s. */
  agentMs?: number
  /** What one second of the real server's own sleeps (its demo path) and of a part number's SLOW<n> lasts here. Default 1,000 ms. */
  secondMs?: number
}

export type SingleRequest = { progress_channel: string; partnumber: string; description?: string | null; manufacturer?: string | null; supplier?: string | null }
export type BatchRequest = { progress_channel: string; partnumbers: Record<string, unknown> }

// app/pre_proc.py: the part numbers whose single job is the canned demo (app/simul.py
// run_single_simul). The answers given here are this simulator's catalogue, not the demo's texts.
export const DEMO_PARTNUMBERS: ReadonlySet<string> = new Set([
  'BC847BLT1G', '88512006119', 'CL10C330JB8NNNC', 'CL10B472KB8NNNC', 'GRM1885C1H180JA01D', 'CL10A106KP8NNNC', 'C1608X5R1E106M080AC',
  'NACE100M100V6.3X8TR13F', 'CRCW060320K0FKEA', 'ERJ-2RKF2201X', 'IRLML6401TRPBF', 'STPS5H100B-TR', 'ESD7C3.3DT5G', 'LD1117ADT-TR', 'ECS-3225Q-33-260-BS-TR',
])

// app/simul.py `messages`: the demo's progress texts, step 0 to 5.
const DEMO_MESSAGES = [
  'Pedido de análise recebido',
  'Iniciando análise de partnumber com agente Nexa-IA',
  'Buscando informações técnicas do partnumber',
  'Buscando informações técnicas do partnumber',
  'Gerando descrição do produto',
  'Finalizando descrição do produto',
]

/** The Python exception an execute() call ended with; its text is what the real code publishes (str(e)). */
class PythonError extends Error {}

/** What execute() was given: the single job's pydantic model, or one value of a batch's `partnumbers`. */
type ExecuteInput = { kind: 'model' } | { kind: 'value'; value: unknown }

const NULL_RESULT = { partnumber: null, ncm: null, description: null, exception: null, nve: null, fabricante: null, endereco: null, pais: null, confidence_score: null }

/**
 * The real server's job threads, modelled as async functions over one process-wide state (its
 * module globals). `stop()` ends every job at its next wait, publishing nothing more.
 */
export class RealServerJobs {
  // agents/agents/manager_agent.py: `report = Report()` is module level and execute() sets its
  // channel and job_id, so every job thread of the process shares this one pair.
  readonly #report: { channel: string | null; jobId: string | null } = { channel: null, jobId: null }
  readonly #stopped = new AbortController()
  // Which job a wait belongs to, so that run() can tell when a job first waits.
  readonly #running = new AsyncLocalStorage<{ waiting(): void }>()
  readonly #variant: 'as-written' | 'as-intended'
  readonly #agentMs: number
  readonly #secondMs: number

  constructor(private readonly bus: MessageBus, private readonly log: FastifyBaseLogger, options: RealServerOptions = {}) {
    this.#variant = options.variant ?? 'as-written'
    this.#agentMs = options.agentMs ?? 60_000
    this.#secondMs = options.secondMs ?? 1_000
  }

  stop(): void {
    this.#stopped.abort()
  }

  /**
   * Starts a job. `firstWait` resolves when the job first waits (an agent run, a sleep) or ends:
   * what it published until then went out with no pause, as a thread does before its first
   * blocking call. `finished` resolves at its end, or when stopped. Neither rejects.
   */
  run(job: () => Promise<void>, channel: string): { firstWait: Promise<void>; finished: Promise<void> } {
    let reachedWait!: () => void
    const firstWait = new Promise<void>((resolve) => (reachedWait = resolve))
    const finished = this.#running.run({ waiting: reachedWait }, job).catch((err) => {
      if (!this.#stopped.signal.aborted) this.log.warn({ err, channel }, 'real-server job stopped: publishing failed')
    }).finally(reachedWait)
    return { firstWait, finished }
  }

  /** app/jobs.py start_single_classification_job. */
  async single(data: SingleRequest, jobId: string): Promise<void> {
    if (DEMO_PARTNUMBERS.has(data.partnumber)) return this.#demo(data, jobId)
    try {
      // Published without job_id (send_progress_update is called without it).
      await this.#publish(data.progress_channel, progress(1, 5, 'Analisando dados no servidor Nexa-IA'))
      await this.#execute(data.progress_channel, jobId, { kind: 'model' })
    } catch (err) {
      if (!(err instanceof PythonError)) throw err
      // send_failed_processing(data.progress_channel, str(e)): no job_id either.
      await this.#publish(data.progress_channel, failed(null, err.message))
    }
  }

  /** app/simul.py run_single_simul (through app/jobs.py run_demo): six progress steps 4 s apart, 5 s more, then the canned result. */
  async #demo(data: SingleRequest, jobId: string): Promise<void> {
    for (let i = 0; i < 6; i++) {
      await this.#publish(data.progress_channel, progress(i, 5, DEMO_MESSAGES[i]!))
      await this.#sleep(4 * this.#secondMs)
    }
    await this.#sleep(5 * this.#secondMs)
    await this.#publish(data.progress_channel, { status: 'done', job_id: jobId, result: classify(data.partnumber) })
  }

  /** app/jobs.py start_batch_classification_job. */
  async batch(data: BatchRequest, jobId: string): Promise<void> {
    const channel = data.progress_channel
    const entries = Object.entries(data.partnumbers)
    const total = entries.length
    if (total === 0) {
      // Fails the job and returns: no `done` ever follows.
      await this.#publish(channel, failed(jobId, 'Nenhum partnumber encontrado para iniciar job de classificação.'))
      return
    }
    const current = 1 // set once, never incremented
    await this.#publish(channel, progress(current, total, 'Iniciando Classificação con Nexa IA. Aguarde pelos resultados.'))
    for (const [pn, info] of entries) {
      try {
        await this.#publish(channel, progress(current, total, `[${current}] Processando partnumber ${pn} com Nexa IA`))
        const result = await this.#execute(channel, jobId, { kind: 'value', value: info })
        if (result) {
          await this.#publish(channel, {
            status: 'partial_result', job_id: jobId, current, total, message: `Classificação encontrada para o partnumber ${pn}`, single_classification: result,
          })
        }
      } catch (err) {
        if (!(err instanceof PythonError)) throw err
        // No separator between "partnumber" and the part number.
        await this.#publish(channel, failed(jobId, `Erro ao processar partnumber${pn}`))
      }
    }
    await this.#publish(channel, { status: 'done', job_id: jobId })
  }

  /** agents/agents/manager_agent.py execute(): the agent run, then Report.send_successful_response. */
  async #execute(channel: string, jobId: string, data: ExecuteInput): Promise<string> {
    this.#report.channel = channel
    this.#report.jobId = jobId
    // part_number = data["partnumber"]: a pydantic model (every single job) cannot be indexed.
    if (data.kind === 'model') throw new PythonError("'SingleClassificationRequest' object is not subscriptable")
    const partnumber = partnumberOf(data.value)
    const response = await this.#agent(partnumber)
    // Report.send_successful_response: send_done_classification(self.channel, self.job_id, result).
    if (this.#variant === 'as-written') {
      throw new PythonError('2 validation errors for DoneProcessing\njob_id\n  Input should be a valid string\nresult\n  Input should be a valid dictionary or instance of SingleClassification')
    }
    // As intended: a `done` whose result is only the agent's text, on the channel and with the
    // job id of whichever job last called execute() in this process.
    await this.#publish(this.#report.channel, executeDoneMessage(this.#report.jobId, response))
    return response
  }

  /** The manager agent's run: silent for its whole length, then a text (or an exception), decided by the part number. */
  async #agent(partnumber: string): Promise<string> {
    const upper = partnumber.toUpperCase()
    const slow = /SLOW(\d+)/.exec(upper)
    await this.#sleep(slow ? Number(slow[1]) * this.#secondMs : this.#agentMs)
    if (upper.includes('AGENTERR')) throw new PythonError(`litellm.Timeout: Connection timed out (simulated agent, ${partnumber})`)
    const named = upper.includes('NOPN') ? null : upper.includes('ALT') ? `${partnumber}-ALT` : partnumber
    return agentAnswer(named)
  }

  async #publish(channel: string, message: object): Promise<void> {
    if (this.#stopped.signal.aborted) throw new Error('stopped')
    await this.bus.publish(channel, pythonJsonDumps(message))
  }

  #sleep(ms: number): Promise<void> {
    this.#running.getStore()?.waiting()
    return sleep(ms, undefined, { signal: this.#stopped.signal })
  }
}

/** str(data["partnumber"]) of one batch value, raising as Python does for a value that is not a dict with that key. */
function partnumberOf(value: unknown): string {
  if (typeof value !== 'object' || value === null) {
    throw new PythonError(typeof value === 'string' ? "string indices must be integers, not 'str'" : `'${pythonTypeName(value)}' object is not subscriptable`)
  }
  if (Array.isArray(value)) throw new PythonError('list indices must be integers or slices, not str')
  if (!('partnumber' in value)) throw new PythonError("'partnumber'")
  const pn = (value as { partnumber: unknown }).partnumber
  return pn === null ? 'None' : typeof pn === 'string' ? pn : JSON.stringify(pn)
}

function pythonTypeName(value: unknown): string {
  if (value === null || value === undefined) return 'NoneType'
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float'
  if (typeof value === 'boolean') return 'bool'
  return typeof value
}

/**
 * The `done` execute() publishes as intended: only the agent's text, as the result's description, on
 * the channel and with the job id of whichever job last called execute() in the process.
 */
export function executeDoneMessage(jobId: string | null, agentText: string) {
  return { status: 'done', job_id: jobId, result: { ...NULL_RESULT, description: agentText } }
}

/** The text an agent run returns: the manager's final answer (the JSON its system prompt asks for), as a string. */
export function agentAnswer(partnumber: string | null): string {
  // The same text, byte for byte, as the peer runner's fake agent (fake_answers.py).
  const answer = {
    part_number: partnumber,
    supplier: '',
    specifications: { source: 'simulated agent' },
    description: `Descricao gerada pelo agente simulado para ${partnumber ?? 'None'}`,
    classification: [{ ncm: '85423190', ex: '', confidence: '0.9' }],
  }
  return `Here is the response from your managed agent 'Manager':\n${JSON.stringify(answer)}`
}

function progress(current: number, total: number, message: string) {
  return { status: 'processing', job_id: null, progress: { current, total, message } }
}

function failed(jobId: string | null, error: string) {
  return { status: 'failed', job_id: jobId, error }
}

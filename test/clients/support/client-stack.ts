import pg from 'pg'
import { Redis } from 'ioredis'
import { request, type Dispatcher } from 'undici'
import { ADMIN, createDatabase, listenToTaskResults, simulatorControls, startServices, startSimulator, type Services } from '../../helpers/stack.js'
import { startGatewayProcess, type GatewayProcess } from '../../helpers/gateway-process.js'

// What the client tests (browser, curl, nginx) run against: real gateway processes sharing one
// PostgreSQL and one Redis, the contract simulator over HTTP, and a Redis connection of the test's
// own to play the AI server message by message and to hear task_results.

export interface ClientStack {
  services: Services
  databaseUrl: string
  gateways: GatewayProcess[]
  simulatorUrl: string
  db: pg.Pool
  taskResults: Array<Record<string, any>>
  /** Registers a simulator scenario for a part number (src/simulator/scenarios.ts). */
  scenario(partnumber: string, scenario: Record<string, unknown>): Promise<void>
  /** Publishes one AI server message on a single job's channel, as the AI server does. */
  publish(jobId: string, message: Record<string, unknown>): Promise<void>
  /** Publishes one AI server message on the channel of a batch job's (first) chunk. */
  publishToBatch(jobId: string, message: Record<string, unknown>): Promise<void>
  close(): Promise<void>
}

export async function startClientStack(options: { instances?: number; env?: Record<string, string>; simulator?: { steps?: number; stepMs?: number } } = {}): Promise<ClientStack> {
  const services = await startServices()
  const databaseUrl = await createDatabase(services.postgres.adminUrl)
  const simulator = await startSimulator(services.redis.url, { steps: options.simulator?.steps ?? 4, stepMs: options.simulator?.stepMs ?? 100 })
  const simulatorUrl = simulator.url

  const gateways: GatewayProcess[] = []
  // One after the other: the first applies the migrations, the others find them applied.
  for (let i = 0; i < (options.instances ?? 1); i++) {
    gateways.push(await startGatewayProcess({ databaseUrl, redisUrl: services.redis.url, aiServerUrl: simulatorUrl, env: options.env, name: `gateway-${i + 1}` }))
  }

  const publisher = new Redis(services.redis.url)
  const { subscriber, taskResults } = await listenToTaskResults(services.redis.url)

  const db = new pg.Pool({ connectionString: databaseUrl, max: 3 })
  db.on('error', () => {})

  return {
    services, databaseUrl, gateways, simulatorUrl, db, taskResults,
    scenario: simulatorControls(simulatorUrl).scenario,
    async publish(jobId, message) {
      const { rows } = await db.query<{ channel: string }>('SELECT channel FROM jobs WHERE id = $1', [jobId])
      if (!rows[0]) throw new Error(`no job ${jobId}`)
      await publisher.publish(rows[0].channel, JSON.stringify(message))
    },
    async publishToBatch(jobId, message) {
      const { rows } = await db.query<{ channel: string }>('SELECT channel FROM job_chunks WHERE job_id = $1 ORDER BY attempt DESC, chunk LIMIT 1', [jobId])
      if (!rows[0]) throw new Error(`no chunk for batch ${jobId}`)
      await publisher.publish(rows[0].channel, JSON.stringify(message))
    },
    async close() {
      await Promise.all(gateways.map((g) => g.stop()))
      await simulator.close()
      publisher.disconnect()
      subscriber.disconnect()
      await db.end()
      await services.stop()
    },
  }
}

/** AI server messages, as in shared/contract/messages/. */
export const ai = {
  processing: (current: number, total: number, message: string) => ({ status: 'processing', job_id: null, progress: { current, total, message } }),
  done: (result: Record<string, unknown>) => ({ status: 'done', job_id: 'job-client-test', result }),
  partialResult: (current: number, total: number, result: Record<string, unknown>) => ({
    status: 'partial_result', job_id: 'job-client-test', current, total, message: `Classificacao encontrada para o partnumber ${result.partnumber}`, single_classification: result,
  }),
  itemFailed: (partnumber: string) => ({ status: 'failed', job_id: 'job-client-test', error: `Erro ao processar partnumber${partnumber}` }),
  batchDone: () => ({ status: 'done', job_id: 'job-client-test' }),
  result: (partnumber: string, overrides: Record<string, unknown> = {}) => ({
    partnumber,
    ncm: '85412120',
    description: 'Transistor de silicio NPN de uso geral, encapsulamento SOT-23.',
    exception: '00',
    nve: null,
    fabricante: 'ONSEMI',
    endereco: '5701 North Pima Road, Scottsdale, Arizona, 85250, EUA',
    pais: 'CHINA, REPUBLICA POPULAR',
    confidence_score: 0.93,
    ...overrides,
  }),
}

export interface ApiResponse { status: number; headers: Record<string, any>; body: any }

/** A JSON call to `base` (a gateway or nginx), with a Bearer token or extra headers, through an optional dispatcher. */
export async function call(base: string, method: string, path: string, options: { token?: string; body?: unknown; headers?: Record<string, string>; dispatcher?: Dispatcher } = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  if (options.body !== undefined) headers['content-type'] = 'application/json'
  const res = await request(`${base}${path}`, {
    method: method as Dispatcher.HttpMethod, headers, dispatcher: options.dispatcher,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  })
  const text = await res.body.text()
  let body: any = text
  try { body = text ? JSON.parse(text) : null } catch { /* not JSON */ }
  return { status: res.statusCode, headers: res.headers, body }
}

export async function login(base: string, dispatcher?: Dispatcher, email = ADMIN.email, password = ADMIN.password): Promise<string> {
  const res = await call(base, 'POST', '/auth/login', { body: { email, password }, dispatcher })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.access_token
}

import pg from 'pg'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { ADMIN, createDatabase, listenToTaskResults, simulatorControls, startServices, startSimulator, type Services } from '../../helpers/stack.js'
import { startGatewayProcess, type GatewayProcess, type GatewayProcessOptions } from '../../helpers/gateway-process.js'
import { parseMetrics, type Metric } from './fault-stack.js'

// Real gateway processes (`node --import tsx src/server.ts`) on one PostgreSQL and one Redis, with
// the contract simulator in the test process: for the faults that need a process to die.

export interface ProcessStack {
  services: Services
  databaseUrl: string
  simulatorUrl: string
  db: pg.Pool
  taskResults: Array<Record<string, any>>
  gateway(name: string, options?: Partial<GatewayProcessOptions>): Promise<GatewayProcess>
  scenario(partnumber: string, scenario: Record<string, unknown>): Promise<void>
  /** Publishes on a job's channel as the AI server does. */
  publish(jobId: string, message: Record<string, unknown>): Promise<void>
  api(baseUrl: string, method: string, path: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; headers: Record<string, any>; body: any; ms: number }>
  login(baseUrl: string): Promise<string>
  metrics(baseUrl: string): Promise<Metric[]>
  close(): Promise<void>
}

/** Defaults for every gateway process of these tests: no rate limit on the loopback clients, quick sweeps. */
export const PROCESS_ENV = {
  RATE_LIMIT_MAX: '1000000',
  RATE_LIMIT_USER_MAX: '1000000',
  USER_MAX_ACTIVE_JOBS: '10000',
  JOB_SWEEP_INTERVAL: '500ms',
  LOG_LEVEL: 'warn',
}

export async function startProcessStack(options: { simulator?: { steps?: number; stepMs?: number } } = {}): Promise<ProcessStack> {
  const services = await startServices()
  const databaseUrl = await createDatabase(services.postgres.adminUrl)
  const simulator = await startSimulator(services.redis.url, { steps: options.simulator?.steps ?? 3, stepMs: options.simulator?.stepMs ?? 100 })
  const simulatorUrl = simulator.url
  const { subscriber, taskResults } = await listenToTaskResults(services.redis.url)
  const publisher = new Redis(services.redis.url)
  const db = new pg.Pool({ connectionString: databaseUrl, max: 3 })
  db.on('error', () => {})
  const gateways: GatewayProcess[] = []

  const api: ProcessStack['api'] = async (baseUrl, method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    const started = performance.now()
    const response = await request(`${baseUrl}${path}`, { method: method as any, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) })
    const text = await response.body.text()
    let body: any = text
    try { body = text ? JSON.parse(text) : null } catch { /* not JSON */ }
    return { status: response.statusCode, headers: response.headers, body, ms: performance.now() - started }
  }

  return {
    services, databaseUrl, simulatorUrl, db, taskResults, api,
    async gateway(name, extra = {}) {
      // The free port is chosen before the process starts; on a busy machine another process may
      // take it meanwhile: try again on another one.
      for (let attempt = 1; ; attempt++) {
        try {
          const gateway = await startGatewayProcess({
            databaseUrl, redisUrl: services.redis.url, aiServerUrl: simulatorUrl, name, ...extra, env: { ...PROCESS_ENV, ...extra.env },
          })
          gateways.push(gateway)
          return gateway
        } catch (err) {
          if (attempt >= 3 || extra.port !== undefined || !/EADDRINUSE/.test((err as Error).message)) throw err
        }
      }
    },
    scenario: simulatorControls(simulatorUrl).scenario,
    async publish(jobId, message) {
      const { rows } = await db.query<{ channel: string }>('SELECT channel FROM jobs WHERE id = $1', [jobId])
      if (!rows[0]) throw new Error(`no job ${jobId}`)
      await publisher.publish(rows[0].channel, JSON.stringify(message))
    },
    async login(baseUrl) {
      const res = await api(baseUrl, 'POST', '/auth/login', { body: { email: ADMIN.email, password: ADMIN.password } })
      if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
      return res.body.access_token as string
    },
    async metrics(baseUrl) {
      const res = await request(`${baseUrl}/metrics`)
      return parseMetrics(await res.body.text())
    },
    async close() {
      await Promise.all(gateways.map((g) => g.kill()))
      await simulator.close()
      subscriber.disconnect()
      publisher.disconnect()
      await db.end()
      await services.stop()
    },
  }
}

import pg from 'pg'
import { Redis } from 'ioredis'
import { request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../../../src/config.js'
import { startGateway } from '../../../src/start.js'
import { apiClient, createDatabase, gatewayTestEnv, loginWith, simulatorControls, simulatorFor, type ApiClient, type Services } from '../../helpers/stack.js'

// An in-process gateway for fault tests: the real app on real PostgreSQL and Redis (those of
// startServices, which the tests stop and start), the contract simulator over HTTP, every log line
// kept for assertions, and a Redis connection of the test's own that plays the AI server message by
// message. That connection has no offline queue, like the AI server's: what it publishes while
// Redis is down is lost, never replayed later.

export type LogLine = Record<string, any> & { level: number; msg: string }

export interface FaultStack {
  url: string
  app: FastifyInstance
  databaseUrl: string
  simulatorUrl: string
  /** A pool of the test's own on the gateway's database. */
  db: pg.Pool
  logs: LogLine[]
  taskResults: Array<Record<string, any>>
  api: ApiClient
  login(email?: string, password?: string): Promise<string>
  scenario(partnumber: string, scenario: Record<string, unknown>): Promise<void>
  simulatorRequests(): Promise<Array<{ endpoint: string; body: any }>>
  channelOf(jobId: string): Promise<string>
  /** Publishes on a channel as the AI server does (an object is sent as JSON). Rejects while Redis is down. */
  publish(channel: string, message: string | Record<string, unknown>): Promise<void>
  /** GET /metrics, parsed. */
  metrics(token?: string): Promise<Metric[]>
  close(): Promise<void>
}

export interface FaultStackOptions {
  env?: Record<string, string>
  simulator?: { steps?: number; stepMs?: number }
  databaseUrl?: string
  simulatorUrl?: string
}

export async function startFaultStack(services: Services, options: FaultStackOptions = {}): Promise<FaultStack> {
  const databaseUrl = options.databaseUrl ?? (await createDatabase(services.postgres.adminUrl))
  const closers: Array<() => Promise<unknown>> = []

  const simulatorUrl = await simulatorFor(services.redis.url, options, closers)

  const config = loadConfig({
    ...gatewayTestEnv({ databaseUrl, redisUrl: services.redis.url, simulatorUrl }),
    RATE_LIMIT_MAX: '1000000',
    RATE_LIMIT_USER_MAX: '1000000',
    ...options.env,
  })
  const logs: LogLine[] = []
  const stream = {
    write(line: string) {
      try { logs.push(JSON.parse(line)) } catch { logs.push({ level: 50, msg: line }) }
      if (logs.length > 200_000) logs.splice(0, 100_000)
      if (process.env.TEST_GATEWAY_LOGS) process.stderr.write(line)
    },
  }
  const { app, url } = await startGateway({ config, logger: { level: 'info', stream } })

  const publisher = new Redis(services.redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 })
  publisher.on('error', () => {})
  const subscriber = new Redis(services.redis.url, { retryStrategy: () => 100 })
  subscriber.on('error', () => {})
  const taskResults: Array<Record<string, any>> = []
  subscriber.on('message', (_channel, message) => taskResults.push(JSON.parse(message)))
  await subscriber.subscribe('task_results')
  await waitFor(() => publisher.status === 'ready', 5_000)

  const db = new pg.Pool({ connectionString: databaseUrl, max: 3 })
  db.on('error', () => {})

  const api = apiClient(url)

  return {
    url, app, databaseUrl, simulatorUrl, db, logs, taskResults, api, login: loginWith(api),
    ...simulatorControls(simulatorUrl),
    async channelOf(jobId) {
      const { rows } = await db.query<{ channel: string }>('SELECT channel FROM jobs WHERE id = $1', [jobId])
      if (!rows[0]) throw new Error(`no job ${jobId}`)
      return rows[0].channel
    },
    async publish(channel, message) {
      await publisher.publish(channel, typeof message === 'string' ? message : JSON.stringify(message))
    },
    async metrics(token) {
      const res = await request(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
      const text = await res.body.text()
      if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`)
      return parseMetrics(text)
    },
    async close() {
      await app.close()
      subscriber.disconnect()
      publisher.disconnect()
      await db.end()
      for (const close of closers) await close()
    },
  }
}

export interface Metric {
  name: string
  labels: Record<string, string>
  value: number
}

/** The Prometheus text format, enough of it for assertions. */
export function parseMetrics(text: string): Metric[] {
  const out: Metric[] = []
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (!match) continue
    const labels: Record<string, string> = {}
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!
    out.push({ name: match[1]!, labels, value: Number(match[3]) })
  }
  return out
}

/** The sum of every sample of `name` whose labels include `labels`. */
export function metricValue(metrics: Metric[], name: string, labels: Record<string, string> = {}): number {
  return metrics
    .filter((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v))
    .reduce((sum, m) => sum + m.value, 0)
}

export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 20): Promise<number> {
  const started = performance.now()
  for (;;) {
    if (await check()) return performance.now() - started
    if (performance.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** AI server messages as the contract describes them. */
export const aiMessage = {
  processing: (current: number, total: number, message = `passo ${current}`) => ({ status: 'processing', job_id: null, progress: { current, total, message } }),
  done: (partnumber: string, overrides: Record<string, unknown> = {}) => ({
    status: 'done',
    job_id: 'job-fault-test',
    result: {
      partnumber, ncm: '85412120', description: 'Transistor bipolar NPN, montagem em superficie', exception: '00', nve: null,
      fabricante: 'ONSEMI', endereco: '5701 North Pima Road, Scottsdale', pais: 'ESTADOS UNIDOS', confidence_score: 0.93, ...overrides,
    },
  }),
  failed: (error: string | null) => ({ status: 'failed', job_id: null, error }),
}

export const ms = (value: number) => `${Math.round(value)} ms`
export const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`

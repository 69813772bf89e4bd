import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { Redis } from 'ioredis'
import { request } from 'undici'
import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../../src/config.js'
import { startGateway } from '../../src/start.js'
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/services/embedded/postgres.js'
import { freePort } from '../../src/services/free-port.js'
import { createRedisBus } from '../../src/services/bus/redis-bus.js'
import { buildSimulator, type SimulatorOptions } from '../../src/simulator/app.js'
import { startRedisServer, type RedisServerHandle } from './redis-server.js'
import { stopWhenGone } from './watchdog.js'
import { migrate } from '../../src/db/migrate.js'

// Real services for a test file: one PostgreSQL and one Redis (or those of TEST_DATABASE_URL and
// TEST_REDIS_URL), a fresh database per gateway stack, the contract simulator over real HTTP.

export interface Services {
  postgres: { adminUrl: string; handle?: EmbeddedPostgresHandle }
  redis: { url: string; handle?: RedisServerHandle }
  stop(): Promise<void>
}

export async function startServices(): Promise<Services> {
  const cleanups: Array<() => Promise<void>> = []
  let postgres: Services['postgres']
  if (process.env.TEST_DATABASE_URL) postgres = { adminUrl: process.env.TEST_DATABASE_URL }
  else {
    const dir = await mkdtemp(join(tmpdir(), 'nexa-test-pg-'))
    // Stopped (immediate shutdown) and removed even if this process is killed before its teardown.
    stopWhenGone([{ pidFile: join(dir, 'cluster', 'postmaster.pid'), signal: 'QUIT' }], [dir])
    const handle = await startEmbeddedPostgres({ dir, port: await freePort(), ephemeral: true })
    cleanups.push(async () => { await handle.stop(); await rm(dir, { recursive: true, force: true }) })
    postgres = { adminUrl: handle.url, handle }
  }
  let redis: Services['redis']
  if (process.env.TEST_REDIS_URL) redis = { url: process.env.TEST_REDIS_URL }
  else {
    const handle = await startRedisServer()
    cleanups.push(() => handle.stop())
    redis = { url: handle.url, handle }
  }
  return { postgres, redis, stop: async () => { for (const c of cleanups.reverse()) await c() } }
}

export async function createDatabase(adminUrl: string): Promise<string> {
  const name = `nexa_test_${randomBytes(6).toString('hex')}`
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  await client.query(`CREATE DATABASE ${name}`)
  await client.end()
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

/** For tests of one store or service: real PostgreSQL, a fresh migrated database and a pool on it. */
export async function startDatabasePool(max: number): Promise<{ pool: pg.Pool; close(): Promise<void> }> {
  const services = await startServices()
  const databaseUrl = await createDatabase(services.postgres.adminUrl)
  await migrate(databaseUrl)
  const pool = new pg.Pool({ connectionString: databaseUrl, max })
  pool.on('error', () => {}) // idle connections cut when the server stops at the end
  return { pool, close: async () => { await pool.end(); await services.stop() } }
}

export const ADMIN = { email: 'admin@nexa.test', password: 'admin-password-123' }

/** No sign-in throttling in the way (it is tested in test/routes/auth-rate-limit.test.ts). */
export const NO_LOGIN_LIMITS = { LOGIN_MAX_FAILURES_PER_ADDRESS: '100000', LOGIN_MAX_FAILURES_PER_EMAIL: '100000', LOGIN_BACKOFF_BASE: '0' }

export interface Stack {
  url: string
  app: FastifyInstance
  databaseUrl: string
  db: pg.Pool
  simulatorUrl: string
  /** Registers a simulator scenario for a part number (see src/simulator/scenarios.ts). */
  scenario(partnumber: string, scenario: Record<string, unknown>): Promise<void>
  simulatorRequests(): Promise<Array<{ endpoint: string; body: any }>>
  /** Collects every message published on task_results from now on. */
  taskResults: Array<Record<string, any>>
  api: ApiClient
  login(email?: string, password?: string): Promise<string>
  createUser(email: string, password?: string, role?: 'ADMIN' | 'USER'): Promise<{ id: string; token: string }>
  close(): Promise<void>
}

export interface StackOptions {
  env?: Record<string, string>
  simulator?: SimulatorSettings
  /** Reuse a database (a second gateway instance on the same data). */
  databaseUrl?: string
  /** Reuse a simulator (a second gateway instance on the same AI server). */
  simulatorUrl?: string
}

/** A JSON request to the gateway as a client makes it, timed; the body parsed when it is JSON. */
export type ApiClient = (method: string, path: string, options?: { token?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number }) =>
  Promise<{ status: number; headers: Record<string, any>; body: any; ms: number }>

export function apiClient(url: string): ApiClient {
  return async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers }
    if (opts.token) headers.authorization = `Bearer ${opts.token}`
    if (opts.body !== undefined) headers['content-type'] = 'application/json'
    const started = performance.now()
    const response = await request(`${url}${path}`, {
      method: method as any, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      headersTimeout: opts.timeoutMs ?? 30_000, bodyTimeout: opts.timeoutMs ?? 30_000,
    })
    // An open event stream does not end by itself (and its heartbeats defeat bodyTimeout): a
    // caller that gets one where it expected an answer sees what came within 2 s, not a test that
    // hangs. A stream that ends at once (a retry hint) is read whole.
    const stream = String(response.headers['content-type'] ?? '').startsWith('text/event-stream')
    const text = stream ? await readFor(response.body, 2_000) : await response.body.text()
    const ms = performance.now() - started
    let body: any = text
    try { body = text ? JSON.parse(text) : null } catch { /* not JSON */ }
    return { status: response.statusCode, headers: response.headers, body, ms }
  }
}

/** What a response body delivers within `ms` (or until it ends). */
async function readFor(body: AsyncIterable<Buffer> & { destroy(): void }, ms: number): Promise<string> {
  let text = ''
  const cutOff = setTimeout(() => body.destroy(), ms)
  try {
    for await (const chunk of body) text += chunk.toString()
  } catch {
    // cut off: the stream was still open
  } finally {
    clearTimeout(cutOff)
  }
  return text
}

/** Signs in through the API; the access token. */
/**
 * A request of a test's setup, as a client makes it: on a busy machine the gateway may shed load
 * (503 database_busy or database_unavailable, with Retry-After), and a client then tries again.
 */
export async function retryingOn503(send: () => ReturnType<ApiClient>, attempts = 10): ReturnType<ApiClient> {
  let res = await send()
  for (let attempt = 1; res.status === 503 && attempt < attempts; attempt++) {
    await new Promise((r) => setTimeout(r, 1_000 * Math.min(Number(res.headers['retry-after']) || 1, 5)))
    res = await send()
  }
  return res
}

export function loginWith(api: ApiClient) {
  return async (email = ADMIN.email, password = ADMIN.password): Promise<string> => {
    const res = await retryingOn503(() => api('POST', '/auth/login', { body: { email, password } }))
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body.access_token as string
  }
}

/** How a test's simulator behaves: the contract's paced steps, or the real server's profile (src/simulator/real-server-jobs.ts). */
export type SimulatorSettings = Pick<SimulatorOptions, 'steps' | 'stepMs' | 'profile' | 'realServer'>

/** The simulator over real HTTP (the contract, unless `settings.profile` says otherwise), publishing on real Redis. */
export async function startSimulator(redisUrl: string, settings: SimulatorSettings = {}): Promise<{ url: string; close(): Promise<void> }> {
  const bus = await createRedisBus(redisUrl, silentLog)
  const simulator = await buildSimulator({ ...settings, bus, steps: settings.steps ?? 3, stepMs: settings.stepMs ?? 20 })
  const url = await simulator.listen({ host: '127.0.0.1', port: 0 })
  return { url, close: async () => { await simulator.close(); await bus.close() } }
}

/** The simulator the options name (a second instance on the same AI server), or a new one closed with `closers`. */
export async function simulatorFor(redisUrl: string, options: Pick<StackOptions, 'simulatorUrl' | 'simulator'>, closers: Array<() => Promise<unknown>>): Promise<string> {
  if (options.simulatorUrl) return options.simulatorUrl
  const simulator = await startSimulator(redisUrl, options.simulator)
  closers.push(() => simulator.close())
  return simulator.url
}

/** The simulator's test controls: per-part-number scenarios and the log of requests it got. */
export function simulatorControls(simulatorUrl: string) {
  return {
    async scenario(partnumber: string, scenario: Record<string, unknown>): Promise<void> {
      const res = await request(`${simulatorUrl}/_sim/scenarios/${encodeURIComponent(partnumber)}`, {
        method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(scenario),
      })
      if (res.statusCode >= 300) throw new Error(`scenario refused: ${await res.body.text()}`)
      await res.body.dump()
    },
    async simulatorRequests(): Promise<Array<{ endpoint: string; body: any }>> {
      const res = await request(`${simulatorUrl}/_sim/requests`)
      const body = (await res.body.json()) as any
      return Array.isArray(body) ? body : body.requests
    },
  }
}

/** Every message published on task_results from now on, collected in order. */
export async function listenToTaskResults(redisUrl: string): Promise<{ subscriber: Redis; taskResults: Array<Record<string, any>> }> {
  const subscriber = new Redis(redisUrl)
  subscriber.on('error', () => {}) // a test may stop Redis: ioredis reconnects by itself
  const taskResults: Array<Record<string, any>> = []
  subscriber.on('message', (_channel, message) => taskResults.push(JSON.parse(message)))
  await subscriber.subscribe('task_results')
  return { subscriber, taskResults }
}

/** The environment of a gateway under test, on these services. */
export function gatewayTestEnv(urls: { databaseUrl: string; redisUrl: string; simulatorUrl: string }): Record<string, string> {
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: urls.databaseUrl,
    REDIS_URL: urls.redisUrl,
    AI_SERVER_URL: urls.simulatorUrl,
    // A bound, not a pace: the in-process simulator answers at once when the machine is idle, and
    // may take seconds when it is busy. Tests of the timeout itself set their own.
    AI_REQUEST_TIMEOUT: '30s',
    AI_RETRY_BASE_DELAY: '20ms',
    JWT_SECRET: 'test-secret-that-is-long-enough-for-hs256-0123456789',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    SHUTDOWN_GRACE: '2s',
  }
}

export async function startStack(services: Services, options: StackOptions = {}): Promise<Stack> {
  const databaseUrl = options.databaseUrl ?? (await createDatabase(services.postgres.adminUrl))
  const closers: Array<() => Promise<unknown>> = []

  const simulatorUrl = await simulatorFor(services.redis.url, options, closers)

  const config = loadConfig({
    ...gatewayTestEnv({ databaseUrl, redisUrl: services.redis.url, simulatorUrl }),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...options.env,
  })
  const { app, url } = await startGateway({ config })

  const { subscriber, taskResults } = await listenToTaskResults(services.redis.url)

  const db = new pg.Pool({ connectionString: databaseUrl, max: 3 })
  db.on('error', () => {})

  const api = apiClient(url)
  const login = loginWith(api)

  let adminToken: string | undefined
  const stack: Stack = {
    url, app, databaseUrl, db, simulatorUrl, taskResults, api, login,
    ...simulatorControls(simulatorUrl),
    async createUser(email, password = 'user-password-123', role = 'USER') {
      adminToken ??= await login()
      const res = await retryingOn503(() => api('POST', '/users', { token: adminToken, body: { email, password, role } }))
      if (res.status !== 201) throw new Error(`create user failed: ${res.status} ${JSON.stringify(res.body)}`)
      return { id: res.body.id, token: await login(email, password) }
    },
    async close() {
      await app.close()
      await subscriber.quit()
      await db.end()
      for (const close of closers) await close()
    },
  }
  return stack
}

export const silentLog = { warn() {}, info() {} }

/** Polls `check` until it returns a truthy value. The timeout only bounds a failure: a busy machine may take long. */
export async function eventually<T>(check: () => Promise<T> | T, timeoutMs = 30_000, intervalMs = 25): Promise<Exclude<T, undefined | null | false>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as Exclude<T, undefined | null | false>
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

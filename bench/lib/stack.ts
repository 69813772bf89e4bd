import type { ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import pg from 'pg'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { migrate } from '../../src/db/migrate.js'
import { hashPassword } from '../../src/services/auth/passwords.js'
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../../src/services/embedded/postgres.js'
import { freePort } from '../../src/services/free-port.js'
import { startRedisServer, type RedisServerHandle } from '../../test/helpers/redis-server.js'
import { ROOT, exited, sleep, spawnNode, stopChild } from './procs.js'

// The real services, each its own process: PostgreSQL (from npm), redis-server, the AI simulator
// and the gateway, the latter built with tsc and run with plain node as in production.

const BUILD_DIR = join(ROOT, 'node_modules/.cache/nexa-bench')
export const PROFILE_DIR = join(BUILD_DIR, 'profiles')
const JWT_SECRET = 'benchmark-secret-that-is-long-enough-for-hs256-0123456789'
// Production serves /metrics only with a token.
const METRICS_TOKEN = 'benchmark-metrics-token-0123456789'
export const BENCH_USER = { email: 'bench@nexa.bench', password: 'bench-password-123' }
const ADMIN = { email: 'admin@nexa.bench', password: 'admin-password-123' }

export interface GatewayOptions {
  /** Write a V8 CPU profile of the whole run of this process (written when it exits). */
  profileName?: string
  env?: Record<string, string>
  /** Extra node flags for the gateway process (say --max-semi-space-size=32). */
  nodeArgs?: string[]
}

export interface RunningGateway {
  pid: number
  port: number
  url: string
  child: ChildProcess
  /** The .cpuprofile file, once stopped, when profiling. */
  profileDir?: string
}

export class BenchStack {
  gateway: RunningGateway | undefined
  simulatorUrl = ''
  private simulator: ChildProcess | undefined
  readonly db: pg.Pool
  readonly redis: Redis
  userId = ''
  token = ''
  /** Node flags for every gateway start (`--gateway-node-args`). */
  gatewayNodeArgs: string[] = []

  private constructor(
    readonly dir: string,
    readonly postgres: EmbeddedPostgresHandle,
    readonly databaseUrl: string,
    readonly redisServer: RedisServerHandle,
    readonly entry: { server: string[]; simulator: string[] },
  ) {
    this.db = new pg.Pool({ connectionString: databaseUrl, max: 4 })
    this.db.on('error', () => {})
    this.redis = new Redis(redisServer.url, { connectionName: 'bench-admin' })
  }

  get redisUrl(): string {
    return this.redisServer.url
  }

  /** Builds the gateway (unless `useTsx`), starts PostgreSQL and Redis, migrates a fresh database and creates the benchmark user. */
  static async start(options: { useTsx: boolean; reuseBuild: boolean; log: (line: string) => void }): Promise<BenchStack> {
    const entry = options.useTsx
      ? { server: [join(ROOT, 'src/server.ts')], simulator: [join(ROOT, 'src/simulator/main.ts')] }
      : options.reuseBuild ? builtEntry() : await build(options.log)
    const dir = await mkdtemp(join(tmpdir(), 'nexa-bench-'))
    options.log('starting PostgreSQL and Redis')
    const postgres = await startEmbeddedPostgres({ dir, port: await freePort(), ephemeral: true })
    const admin = new pg.Client({ connectionString: postgres.url })
    await admin.connect()
    await admin.query('CREATE DATABASE nexa_bench')
    await admin.end()
    const databaseUrl = postgres.url.replace(/\/postgres$/, '/nexa_bench')
    await migrate(databaseUrl)
    const redisServer = await startRedisServer()
    const stack = new BenchStack(dir, postgres, databaseUrl, redisServer, entry)
    const { rows } = await stack.db.query(
      `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'USER') RETURNING id`,
      [BENCH_USER.email, await hashPassword(BENCH_USER.password)],
    )
    stack.userId = rows[0].id
    return stack
  }

  /** (Re)starts the simulator; `steps` progress messages then `done`, `stepMs` apart. */
  async startSimulator(steps: number, stepMs: number): Promise<void> {
    await this.stopSimulator()
    const port = await freePort()
    this.simulator = spawnNode(this.entry.simulator[0]!, [], {
      env: { SIMULATOR_PORT: String(port), SIMULATOR_HOST: '127.0.0.1', REDIS_URL: this.redisUrl, SIMULATOR_STEPS: String(steps), SIMULATOR_STEP_MS: String(stepMs) },
    })
    this.simulatorUrl = `http://127.0.0.1:${port}`
    await waitUntil(`${this.simulatorUrl}/_sim/requests`, this.simulator)
  }

  async stopSimulator(): Promise<void> {
    if (this.simulator) await stopChild(this.simulator)
    this.simulator = undefined
  }

  /** (Re)starts the gateway as production runs it, and signs the benchmark user in. */
  async startGateway(options: GatewayOptions = {}): Promise<RunningGateway> {
    await this.stopGateway()
    if (!this.simulatorUrl) await this.startSimulator(5, 0)
    const port = await freePort()
    const profileDir = options.profileName ? join(PROFILE_DIR, options.profileName) : undefined
    if (profileDir) {
      await rm(profileDir, { recursive: true, force: true })
      await mkdir(profileDir, { recursive: true })
    }
    const child = spawnNode(this.entry.server[0]!, [], {
      nodeArgs: [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...(options.nodeArgs ?? this.gatewayNodeArgs)],
      env: {
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: String(port),
        LOG_LEVEL: 'warn',
        DATABASE_URL: this.databaseUrl,
        DATABASE_POOL_MAX: '20',
        MIGRATE_ON_START: 'false',
        REDIS_URL: this.redisUrl,
        AI_SERVER_URL: this.simulatorUrl,
        JWT_SECRET,
        METRICS_TOKEN,
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        ACCESS_TOKEN_TTL: '1h',
        RATE_LIMIT_MAX: '10000000',
        RATE_LIMIT_USER_MAX: '10000000',
        USER_MAX_ACTIVE_JOBS: '10000000',
        JOB_DEADLINE: '4h',
        SHUTDOWN_GRACE: '8s',
        ...options.env,
      },
      inheritOutput: true,
    })
    const url = `http://127.0.0.1:${port}`
    await waitUntil(`${url}/ready`, child)
    this.gateway = { pid: child.pid!, port, url, child, profileDir }
    // A fresh sign-in for every start: tokens are short-lived, a full run is not.
    this.token = await this.login()
    return this.gateway
  }

  /** SIGTERM and wait: a graceful stop, which also writes the CPU profile. */
  async stopGateway(): Promise<RunningGateway | undefined> {
    const gateway = this.gateway
    this.gateway = undefined
    if (gateway) await stopChild(gateway.child, 20_000)
    return gateway
  }

  private async login(): Promise<string> {
    const res = await request(`${this.gateway!.url}/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(BENCH_USER),
    })
    const body = (await res.body.json()) as { access_token?: string }
    if (res.statusCode !== 200 || !body.access_token) throw new Error(`login failed: ${res.statusCode} ${JSON.stringify(body)}`)
    return body.access_token
  }

  /** `count` live single jobs of the benchmark user, inserted directly (no AI server involved); channel progress-<id>. */
  async seedRunningJobs(count: number, tag: string): Promise<string[]> {
    const { rows } = await this.db.query(
      `WITH ids AS (SELECT gen_random_uuid() AS id, n FROM generate_series(1, $2::int) AS n)
       INSERT INTO jobs (id, kind, owner_id, status, source, partnumber, input, channel, progress_current, progress_total, progress_message)
       SELECT id, 'SINGLE', $1, 'RUNNING', 'AI', $3 || n, '{"description":null,"manufacturer":null,"supplier":null}', 'progress-' || id, 0, 5, 'seeded'
         FROM ids ORDER BY n
       RETURNING id`,
      [this.userId, count, `SEED-${tag.toUpperCase()}-`],
    )
    return rows.map((r) => r.id as string)
  }

  async deleteSeededJobs(): Promise<void> {
    await this.db.query(`DELETE FROM jobs WHERE partnumber LIKE 'SEED-%'`)
  }

  /** connected_clients of Redis, and the connections of the gateway that are subscribed to something. */
  async redisClients(): Promise<{ connected: number; gatewaySubscribed: number; gatewayConnections: number }> {
    const info = await this.redis.info('clients')
    const connected = Number(/connected_clients:(\d+)/.exec(info)?.[1])
    const list = (await this.redis.client('LIST')) as string
    const gateway = list.split('\n').filter((line) => / name=nexa-gateway(-sub)? /.test(line))
    const gatewaySubscribed = gateway.filter((line) => / (sub|psub|ssub)=[1-9]/.test(line)).length
    return { connected, gatewaySubscribed, gatewayConnections: gateway.length }
  }

  /** The gateway's own count of open streams (its Prometheus gauge). */
  async gatewayOpenStreams(): Promise<number> {
    return metricValue(await this.gatewayMetrics(), 'nexa_sse_streams_open')
  }

  /**
   * The gateway's event-loop delay since the previous scrape, ms: call once to start a window, once
   * to read it. prom-client resets its histogram at every scrape; the histogram records whole
   * intervals of its 10 ms sampling timer, so the delay is what exceeds 10 ms.
   */
  async gatewayLoopDelayMs(): Promise<{ p99: number; max: number }> {
    const text = await this.gatewayMetrics()
    const beyondSample = (seconds: number) => Math.max(0, seconds * 1000 - 10)
    return { p99: beyondSample(metricValue(text, 'nexa_nodejs_eventloop_lag_p99_seconds')), max: beyondSample(metricValue(text, 'nexa_nodejs_eventloop_lag_max_seconds')) }
  }

  private async gatewayMetrics(): Promise<string> {
    const res = await request(`${this.gateway!.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    return res.body.text()
  }

  async stop(): Promise<void> {
    await this.stopGateway().catch(() => undefined)
    await this.stopSimulator().catch(() => undefined)
    await this.db.end().catch(() => undefined)
    this.redis.disconnect()
    await this.redisServer.stop().catch(() => undefined)
    await this.postgres.stop().catch(() => undefined)
    await rm(this.dir, { recursive: true, force: true }).catch(() => undefined)
  }
}

/** tsc into node_modules/.cache (node resolves the project's packages from there). */
async function build(log: (line: string) => void): Promise<{ server: string[]; simulator: string[] }> {
  const outDir = join(BUILD_DIR, 'dist')
  log(`building the gateway with tsc into ${outDir}`)
  await rm(outDir, { recursive: true, force: true })
  await promisify(execFile)(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.json'), '--outDir', outDir, '--sourceMap', 'false'], { cwd: ROOT })
    .catch((err: { stdout?: string }) => {
      // tsc still emits when another change in progress does not type-check; say so and go on.
      log(`tsc reported errors (output emitted anyway):\n${err.stdout ?? err}`)
    })
  // Static assets beside the code (the browser console), as `npm run build` ships them.
  await cp(join(ROOT, 'src'), outDir, { recursive: true, filter: (source) => !source.endsWith('.ts') })
  return builtEntry()
}

/** The last build, as it is (`--no-build`: to try a change on the built output without touching src/). */
function builtEntry(): { server: string[]; simulator: string[] } {
  const outDir = join(BUILD_DIR, 'dist')
  return { server: [join(outDir, 'server.js')], simulator: [join(outDir, 'simulator/main.js')] }
}

async function waitUntil(url: string, child: ChildProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let dead = false
  void exited(child).then(() => { dead = true })
  for (;;) {
    if (dead) throw new Error(`process for ${url} exited during start (code ${child.exitCode})`)
    const ok = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000 }).then(async (res) => {
      await res.body.dump()
      return res.statusCode === 200
    }, () => false)
    if (ok) return
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${timeoutMs} ms`)
    await sleep(100)
  }
}

/** A metric without labels from a Prometheus text exposition (NaN when absent). */
function metricValue(text: string, name: string): number {
  return Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN)
}

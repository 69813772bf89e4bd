import { envSchema } from 'env-schema'
import { Type, type Static } from '@sinclair/typebox'
import { randomBytes } from 'node:crypto'
import { environment } from './environment.js'

// Every setting is an environment variable, validated here once at start.
// Durations accept a number of seconds or a value with a unit: 500ms, 30s, 15m, 2h, 7d.
const Duration = (fallback: string) => Type.String({ default: fallback, pattern: '^\\d+(ms|s|m|h|d)?$' })
const Flag = (fallback: boolean) => Type.Boolean({ default: fallback })

const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ default: 3000, minimum: 0, maximum: 65535 }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)), { default: 'info' }),
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://' })),

  DATABASE_URL: Type.String({ pattern: '^postgres(ql)?://' }),
  DATABASE_POOL_MAX: Type.Integer({ default: 10, minimum: 1, maximum: 200 }),
  DATABASE_QUERY_TIMEOUT: Duration('10s'),
  MIGRATE_ON_START: Flag(true),
  NCM_SNAPSHOT_ON_START: Flag(true),

  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  REDIS_COMMAND_TIMEOUT: Duration('1s'),

  AI_SERVER_URL: Type.String({ pattern: '^https?://' }),
  AI_CONNECT_TIMEOUT: Duration('2s'),
  AI_REQUEST_TIMEOUT: Duration('10s'),
  AI_MAX_RETRIES: Type.Integer({ default: 3, minimum: 0, maximum: 10 }),
  AI_RETRY_BASE_DELAY: Duration('200ms'),

  JWT_SECRET: Type.Optional(Type.String()),
  ACCESS_TOKEN_TTL: Duration('15m'),
  REFRESH_TOKEN_TTL: Duration('30d'),
  STREAM_TOKEN_TTL: Duration('5m'),
  SESSION_RECHECK_INTERVAL: Duration('30s'),
  COOKIE_SECURE: Type.Optional(Type.Boolean()),

  ADMIN_EMAIL: Type.Optional(Type.String({ pattern: '^[^@\\s]+@[^@\\s]+$' })),
  ADMIN_PASSWORD: Type.Optional(Type.String({ minLength: 12 })),
  BOOTSTRAP_ADMIN: Flag(true),

  LOGIN_MAX_FAILURES_PER_ADDRESS: Type.Integer({ default: 30, minimum: 1 }),
  LOGIN_MAX_FAILURES_PER_EMAIL: Type.Integer({ default: 10, minimum: 1 }),
  LOGIN_BACKOFF_BASE: Duration('1s'),
  LOGIN_WINDOW: Duration('15m'),
  RATE_LIMIT_MAX: Type.Integer({ default: 1200, minimum: 1 }),
  RATE_LIMIT_WINDOW: Duration('1m'),
  RATE_LIMIT_USER_MAX: Type.Integer({ default: 600, minimum: 1 }),
  TRUST_PROXY: Type.String({ default: 'false' }),
  CORS_ORIGINS: Type.String({ default: '' }),
  // Unset: on outside production; in production /docs is off and /metrics needs METRICS_TOKEN.
  DOCS_ENABLED: Type.Optional(Type.Boolean()),
  METRICS_ENABLED: Type.Optional(Type.Boolean()),
  METRICS_TOKEN: Type.Optional(Type.String({ minLength: 16 })),

  AI_BATCH_SIZE: Type.Integer({ default: 100, minimum: 1, maximum: 1000 }),
  BATCH_MAX_ITEMS: Type.Integer({ default: 1000, minimum: 1, maximum: 10_000 }),
  DOCUMENT_MAX_BYTES: Type.Integer({ default: 20 * 1024 * 1024, minimum: 1024 }),
  DOCUMENT_MAX_CONCURRENT_PER_USER: Type.Integer({ default: 2, minimum: 1 }),
  DOCUMENT_MAX_PAGES: Type.Integer({ default: 300, minimum: 1, maximum: 10_000 }),
  // Budgets of one document's extraction (src/services/pdf/extraction-pool.ts): over one, it is refused with 413 or 422.
  DOCUMENT_MAX_DECOMPRESSED_BYTES: Type.Integer({ default: 256 * 1_048_576, minimum: 1024 }),
  DOCUMENT_MAX_TEXT_OPERATORS: Type.Integer({ default: 500_000, minimum: 1 }),
  DOCUMENT_MAX_TEXT_ITEMS: Type.Integer({ default: 500_000, minimum: 1 }),
  DOCUMENT_EXTRACTION_TIMEOUT: Duration('30s'),
  DOCUMENT_EXTRACTION_MEMORY_MB: Type.Integer({ default: 1024, minimum: 256 }),
  DOCUMENT_EXTRACTION_RECYCLE_GROWTH_MB: Type.Integer({ default: 256, minimum: 1 }),
  DOCUMENT_STORE_FILES: Flag(false),

  JOB_DEADLINE: Duration('35m'),
  JOB_SWEEP_INTERVAL: Duration('30s'),
  USER_MAX_ACTIVE_JOBS: Type.Integer({ default: 50, minimum: 1 }),
  SSE_HEARTBEAT_INTERVAL: Duration('15s'),
  SSE_RETRY: Duration('3s'),
  SSE_MAX_BUFFERED_BYTES: Type.Integer({ default: 1_048_576, minimum: 1024 }),
  SHUTDOWN_GRACE: Duration('8s'),
})

type Env = Static<typeof EnvSchema>

export interface Config {
  env: Env['NODE_ENV']
  host: string
  port: number
  logLevel: Env['LOG_LEVEL']
  publicUrl?: string
  databaseUrl: string
  databasePoolMax: number
  databaseQueryTimeoutMs: number
  migrateOnStart: boolean
  /** Load data/ncm/ncm.json.gz at start when the NCM table is empty. */
  ncmSnapshotOnStart: boolean
  redisUrl?: string
  redisCommandTimeoutMs: number
  ai: { baseUrl: string; connectTimeoutMs: number; requestTimeoutMs: number; maxRetries: number; retryBaseDelayMs: number }
  auth: {
    jwtSecret: string
    accessTokenTtlMs: number
    refreshTokenTtlMs: number
    streamTokenTtlMs: number
    /** How often open event streams re-check that their session is still open (the safety net behind revocation notices). */
    sessionRecheckMs: number
    cookieSecure: boolean
    /** Sign-in throttling: failures only (see src/services/auth/login-throttle.ts). */
    login: { maxFailuresPerAddress: number; maxFailuresPerEmail: number; backoffBaseMs: number; windowMs: number }
  }
  admin?: { email: string; password: string }
  bootstrapAdmin: boolean
  rateLimit: { max: number; windowMs: number; userMax: number }
  trustProxy: boolean | string | ((address: string, hop: number) => boolean)
  corsOrigins: string[]
  docsEnabled: boolean
  metrics: { enabled: boolean; token?: string }
  jobs: { deadlineMs: number; sweepIntervalMs: number; maxActivePerUser: number; aiBatchSize: number; batchMaxItems: number }
  documents: { maxBytes: number; maxConcurrentPerUser: number; maxPages: number; storeFiles: boolean }
  extraction: { maxDecompressedBytes: number; maxTextOperators: number; maxTextItems: number; timeoutMs: number; maxMemoryMb: number; recycleGrowthMb: number }
  sse: { heartbeatMs: number; retryMs: number; maxBufferedBytes: number }
  shutdownGraceMs: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

export function parseDuration(value: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(value)
  if (!match) throw new ConfigError(`invalid duration "${value}"`)
  return Number(match[1]) * UNIT_MS[match[2] ?? 's']!
}

function parseTrustProxy(value: string): Config['trustProxy'] {
  if (value === 'true') return true
  if (value === 'false' || value === '') return false
  if (/^\d+$/.test(value)) {
    const hops = Number(value) // trust this many proxies in front of the gateway
    return (_address, hop) => hop < hops
  }
  return value // comma-separated addresses or CIDR ranges
}

const MIN_SECRET_LENGTH = 32
// They counted every sign-in attempt, successes included: a deployment that still sets one is told, not ignored.
const REPLACED_SETTINGS = { LOGIN_MAX_PER_IP: 'LOGIN_MAX_FAILURES_PER_ADDRESS', LOGIN_MAX_PER_EMAIL: 'LOGIN_MAX_FAILURES_PER_EMAIL' }

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  let env: Env
  const data = environment(source)
  for (const [replaced, by] of Object.entries(REPLACED_SETTINGS)) {
    if (data[replaced] !== undefined) throw new ConfigError(`${replaced} is replaced by ${by}, which counts failed sign-ins only`)
  }
  try {
    env = envSchema<Env>({ schema: EnvSchema, data, env: false, dotenv: false })
  } catch (err) {
    throw new ConfigError(`invalid environment: ${(err as Error).message}`)
  }
  const production = env.NODE_ENV === 'production'

  let jwtSecret = env.JWT_SECRET ?? ''
  if (jwtSecret.length < MIN_SECRET_LENGTH) {
    if (production) {
      throw new ConfigError(`JWT_SECRET must be set to at least ${MIN_SECRET_LENGTH} characters in production`)
    }
    // Outside production a missing secret gets a random one: tokens then die with the process.
    jwtSecret = randomBytes(32).toString('base64url')
  }
  // Tokens stay short-lived whatever the configuration: an access token at most an hour, a stream token (it travels in URLs) at most 15 minutes.
  if (parseDuration(env.ACCESS_TOKEN_TTL) > 3_600_000) throw new ConfigError('ACCESS_TOKEN_TTL must be at most 1h')
  if (parseDuration(env.STREAM_TOKEN_TTL) > 900_000) throw new ConfigError('STREAM_TOKEN_TTL must be at most 15m')
  // Sign-in counters expire in whole seconds in Redis, and by timers (at most ~24 days) without it.
  if (parseDuration(env.LOGIN_WINDOW) < 1000 || parseDuration(env.LOGIN_WINDOW) > 86_400_000) throw new ConfigError('LOGIN_WINDOW must be between 1s and 1d')
  if (production && !env.REDIS_URL) {
    // The AI server publishes on Redis: without it no progress or result could ever arrive.
    throw new ConfigError('REDIS_URL must be set in production')
  }
  // Behind nginx every path is public: production shows metrics only to holders of the token.
  const metricsEnabled = env.METRICS_ENABLED ?? (!production || env.METRICS_TOKEN !== undefined)
  if (production && metricsEnabled && env.METRICS_TOKEN === undefined) {
    throw new ConfigError('METRICS_TOKEN must be set to serve /metrics in production (or leave METRICS_ENABLED unset)')
  }
  if ((env.ADMIN_EMAIL === undefined) !== (env.ADMIN_PASSWORD === undefined)) {
    throw new ConfigError('ADMIN_EMAIL and ADMIN_PASSWORD must be set together')
  }

  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    logLevel: env.LOG_LEVEL,
    publicUrl: env.PUBLIC_URL?.replace(/\/+$/, ''),
    databaseUrl: env.DATABASE_URL,
    databasePoolMax: env.DATABASE_POOL_MAX,
    databaseQueryTimeoutMs: parseDuration(env.DATABASE_QUERY_TIMEOUT),
    migrateOnStart: env.MIGRATE_ON_START,
    ncmSnapshotOnStart: env.NCM_SNAPSHOT_ON_START,
    redisUrl: env.REDIS_URL,
    redisCommandTimeoutMs: parseDuration(env.REDIS_COMMAND_TIMEOUT),
    ai: {
      baseUrl: env.AI_SERVER_URL.replace(/\/+$/, ''),
      connectTimeoutMs: parseDuration(env.AI_CONNECT_TIMEOUT),
      requestTimeoutMs: parseDuration(env.AI_REQUEST_TIMEOUT),
      maxRetries: env.AI_MAX_RETRIES,
      retryBaseDelayMs: parseDuration(env.AI_RETRY_BASE_DELAY),
    },
    auth: {
      jwtSecret,
      accessTokenTtlMs: parseDuration(env.ACCESS_TOKEN_TTL),
      refreshTokenTtlMs: parseDuration(env.REFRESH_TOKEN_TTL),
      streamTokenTtlMs: parseDuration(env.STREAM_TOKEN_TTL),
      sessionRecheckMs: parseDuration(env.SESSION_RECHECK_INTERVAL),
      cookieSecure: env.COOKIE_SECURE ?? production,
      login: {
        maxFailuresPerAddress: env.LOGIN_MAX_FAILURES_PER_ADDRESS,
        maxFailuresPerEmail: env.LOGIN_MAX_FAILURES_PER_EMAIL,
        backoffBaseMs: parseDuration(env.LOGIN_BACKOFF_BASE),
        windowMs: parseDuration(env.LOGIN_WINDOW),
      },
    },
    admin: env.ADMIN_EMAIL && env.ADMIN_PASSWORD ? { email: env.ADMIN_EMAIL, password: env.ADMIN_PASSWORD } : undefined,
    bootstrapAdmin: env.BOOTSTRAP_ADMIN,
    rateLimit: { max: env.RATE_LIMIT_MAX, windowMs: parseDuration(env.RATE_LIMIT_WINDOW), userMax: env.RATE_LIMIT_USER_MAX },
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    corsOrigins: env.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean),
    docsEnabled: env.DOCS_ENABLED ?? !production,
    metrics: { enabled: metricsEnabled, token: env.METRICS_TOKEN },
    jobs: {
      deadlineMs: parseDuration(env.JOB_DEADLINE),
      sweepIntervalMs: parseDuration(env.JOB_SWEEP_INTERVAL),
      maxActivePerUser: env.USER_MAX_ACTIVE_JOBS,
      aiBatchSize: env.AI_BATCH_SIZE,
      batchMaxItems: env.BATCH_MAX_ITEMS,
    },
    documents: { maxBytes: env.DOCUMENT_MAX_BYTES, maxConcurrentPerUser: env.DOCUMENT_MAX_CONCURRENT_PER_USER, maxPages: env.DOCUMENT_MAX_PAGES, storeFiles: env.DOCUMENT_STORE_FILES },
    extraction: {
      maxDecompressedBytes: env.DOCUMENT_MAX_DECOMPRESSED_BYTES,
      maxTextOperators: env.DOCUMENT_MAX_TEXT_OPERATORS,
      maxTextItems: env.DOCUMENT_MAX_TEXT_ITEMS,
      timeoutMs: parseDuration(env.DOCUMENT_EXTRACTION_TIMEOUT),
      maxMemoryMb: env.DOCUMENT_EXTRACTION_MEMORY_MB,
      recycleGrowthMb: env.DOCUMENT_EXTRACTION_RECYCLE_GROWTH_MB,
    },
    sse: {
      heartbeatMs: parseDuration(env.SSE_HEARTBEAT_INTERVAL),
      retryMs: parseDuration(env.SSE_RETRY),
      maxBufferedBytes: env.SSE_MAX_BUFFERED_BYTES,
    },
    shutdownGraceMs: parseDuration(env.SHUTDOWN_GRACE),
  }
}

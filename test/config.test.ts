import t0 from 'tap'
import { ConfigError, loadConfig, parseDuration } from '../src/config.js'
import { everyVariableEmpty } from './helpers/env-example.js'

const { test } = t0
const base = { DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/nexa', AI_SERVER_URL: 'http://127.0.0.1:5001' }

test('production refuses to start with a missing or short JWT_SECRET', async (t) => {
  t.throws(() => loadConfig({ ...base, NODE_ENV: 'production' }), ConfigError)
  t.throws(() => loadConfig({ ...base, NODE_ENV: 'production', JWT_SECRET: 'short-secret' }), /at least 32 characters/)
  t.throws(() => loadConfig({ ...base, NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }), /REDIS_URL must be set/)
  const config = loadConfig({ ...base, NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), REDIS_URL: 'redis://127.0.0.1:6379' })
  t.equal(config.auth.cookieSecure, true, 'cookies are Secure in production')
})

test('production closes /docs and /metrics unless asked; development and test keep them open', async (t) => {
  const production = { ...base, NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32), REDIS_URL: 'redis://127.0.0.1:6379' }
  const token = 'metrics-token-0123456789abcdef'
  const served = (env: Record<string, string>) => {
    const config = loadConfig(env)
    return { docs: config.docsEnabled, metrics: config.metrics }
  }
  t.same(served(production), { docs: false, metrics: { enabled: false, token: undefined } }, 'production: both closed')
  t.same(served({ ...production, METRICS_TOKEN: token, DOCS_ENABLED: 'true' }), { docs: true, metrics: { enabled: true, token } }, 'a token opens /metrics (for it alone); DOCS_ENABLED=true opens /docs')
  t.same(served({ ...production, METRICS_TOKEN: token, METRICS_ENABLED: 'false' }).metrics.enabled, false, 'METRICS_ENABLED=false closes it even with a token')
  t.throws(() => loadConfig({ ...production, METRICS_ENABLED: 'true' }), /METRICS_TOKEN must be set/, 'an open /metrics without a token is refused')
  for (const env of ['development', 'test']) {
    t.same(served({ ...base, NODE_ENV: env }), { docs: true, metrics: { enabled: true, token: undefined } }, `${env}: both open`)
  }
})

test('sign-in throttling: failures-only settings with defaults; the old attempt counters are refused, not ignored', async (t) => {
  t.same(loadConfig(base).auth.login, { maxFailuresPerAddress: 30, maxFailuresPerEmail: 10, backoffBaseMs: 1000, windowMs: 15 * 60_000 })
  t.throws(() => loadConfig({ ...base, LOGIN_MAX_PER_IP: '30' }), /LOGIN_MAX_PER_IP is replaced by LOGIN_MAX_FAILURES_PER_ADDRESS/)
  t.throws(() => loadConfig({ ...base, LOGIN_MAX_PER_EMAIL: '10' }), /LOGIN_MAX_PER_EMAIL is replaced by LOGIN_MAX_FAILURES_PER_EMAIL/)
  t.same(loadConfig({ ...base, LOGIN_MAX_PER_IP: '' }).auth.login.maxFailuresPerAddress, 30, 'an empty one is not set')
  t.throws(() => loadConfig({ ...base, LOGIN_WINDOW: '500ms' }), /LOGIN_WINDOW must be between 1s and 1d/)
  t.throws(() => loadConfig({ ...base, LOGIN_WINDOW: '2d' }), /LOGIN_WINDOW must be between 1s and 1d/)
})

test('outside production a missing secret is replaced by a random one', async (t) => {
  const a = loadConfig(base)
  const b = loadConfig(base)
  t.ok(a.auth.jwtSecret.length >= 32)
  t.not(a.auth.jwtSecret, b.auth.jwtSecret)
})

test('settings are validated with clear errors', async (t) => {
  t.throws(() => loadConfig({ AI_SERVER_URL: base.AI_SERVER_URL }), /DATABASE_URL/)
  t.throws(() => loadConfig({ ...base, PORT: 'eighty' }), /PORT/)
  t.throws(() => loadConfig({ ...base, JOB_DEADLINE: 'soon' }), /JOB_DEADLINE/)
  t.throws(() => loadConfig({ ...base, AI_SERVER_URL: 'ftp://x' }), /AI_SERVER_URL/)
  t.throws(() => loadConfig({ ...base, ACCESS_TOKEN_TTL: '2h' }), /at most 1h/)
  t.throws(() => loadConfig({ ...base, STREAM_TOKEN_TTL: '1h' }), /at most 15m/)
  t.throws(() => loadConfig({ ...base, ADMIN_EMAIL: 'a@b.c' }), /together/)
  t.throws(() => loadConfig({ ...base, ADMIN_EMAIL: 'a@b.c', ADMIN_PASSWORD: 'short' }), /ADMIN_PASSWORD/)
})

test('an empty value counts as not set', async (t) => {
  const config = loadConfig({ ...base, REDIS_URL: '', LOG_LEVEL: '', PUBLIC_URL: '' })
  t.equal(config.redisUrl, undefined)
  t.equal(config.logLevel, 'info')
})

test('every variable of .env.example set empty in the process environment: the defaults apply', async (t) => {
  const saved = { ...process.env }
  t.teardown(() => { process.env = saved })
  process.env = { ...saved, ...everyVariableEmpty(), ...base }
  const { auth: { jwtSecret: _random, ...auth }, ...fromEmpty } = loadConfig()
  const { auth: { jwtSecret: _other, ...defaultAuth }, ...defaults } = loadConfig(base)
  t.same({ ...fromEmpty, auth }, { ...defaults, auth: defaultAuth })
  t.equal(fromEmpty.port, 3000)
  t.equal(fromEmpty.redisUrl, undefined)
})

test('durations and defaults', async (t) => {
  t.equal(parseDuration('15m'), 900_000)
  t.equal(parseDuration('250ms'), 250)
  t.equal(parseDuration('30'), 30_000, 'a bare number is seconds')
  const config = loadConfig(base)
  t.equal(config.jobs.deadlineMs, 35 * 60_000, 'JOB_DEADLINE defaults to 35 minutes (the real AI server\'s LLM calls may take 30 min, in silence)')
  t.equal(config.sse.heartbeatMs, 15_000, 'heartbeat every 15 s')
  t.equal(config.redisUrl, undefined, 'no Redis: single-process mode')
  t.same(loadConfig({ ...base, CORS_ORIGINS: 'https://a.example, https://b.example' }).corsOrigins, ['https://a.example', 'https://b.example'])
})

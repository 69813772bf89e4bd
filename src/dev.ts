// `npm run dev`: the whole product on one machine with nothing installed but Node.js.
// A real PostgreSQL from npm (data kept in ./.data), the AI simulator, and an in-process bus
// unless DATABASE_URL, AI_SERVER_URL or REDIS_URL point at real ones.
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig } from './config.js'
import { environment } from './environment.js'
import { startGateway } from './start.js'
import { startEmbeddedPostgres } from './services/embedded/postgres.js'
import { freePort } from './services/free-port.js'
import { createMemoryBus } from './services/bus/memory-bus.js'
import { createRedisBus } from './services/bus/redis-bus.js'
import { buildSimulator } from './simulator/app.js'

const env = environment()
const DATA_DIR = resolve(env.DATA_DIR ?? '.data')
const builtInSimulator = !env.AI_SERVER_URL
const closers: Array<() => Promise<unknown>> = []
const say = (line: string) => process.stdout.write(`${line}\n`)

/** A value made once and kept in .data, so that sessions and the admin login survive restarts. */
async function keptSecret(name: string, bytes: number): Promise<string> {
  const file = join(DATA_DIR, name)
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim()
  const value = randomBytes(bytes).toString('base64url')
  await writeFile(file, `${value}\n`, { mode: 0o600 })
  return value
}

await mkdir(DATA_DIR, { recursive: true })

if (!env.DATABASE_URL) {
  say('Starting the embedded PostgreSQL (data in .data/postgres)...')
  const postgres = await startEmbeddedPostgres({ dir: join(DATA_DIR, 'postgres'), port: await freePort() })
  closers.push(() => postgres.stop())
  env.DATABASE_URL = postgres.url
}

const bus = env.REDIS_URL ? undefined : createMemoryBus()
if (builtInSimulator) {
  const simulatorBus = bus ?? (await createRedisBus(env.REDIS_URL!, { warn: () => {}, info: () => {} }))
  const simulator = await buildSimulator({ bus: simulatorBus, steps: Number(env.SIMULATOR_STEPS ?? 5), stepMs: Number(env.SIMULATOR_STEP_MS ?? 600) })
  env.AI_SERVER_URL = await simulator.listen({ host: '127.0.0.1', port: 0 })
  closers.push(async () => { await simulator.close(); if (!bus) await simulatorBus.close() })
}

env.JWT_SECRET ??= await keptSecret('jwt-secret', 32)
env.ADMIN_EMAIL ??= 'admin@nexa.local'
env.ADMIN_PASSWORD ??= await keptSecret('admin-password', 12)
env.LOG_LEVEL ??= 'info'

let config
try {
  config = loadConfig(env)
} catch (err) {
  console.error(err instanceof ConfigError ? `configuration error: ${err.message}` : err)
  process.exit(2)
}

const { app, url } = await startGateway({ config, bus })
say(`
  Nexa gateway is running at ${url}  (${bus ? 'single-process mode: in-process message bus' : 'Redis message bus'})
  AI server: ${env.AI_SERVER_URL}${builtInSimulator ? ' (the built-in simulator)' : ''}
  Admin login: ${env.ADMIN_EMAIL} / ${env.ADMIN_PASSWORD}
  API docs: ${url}/docs

  Try it:
    TOKEN=$(curl -s ${url}/auth/login -H 'content-type: application/json' \\
      -d '{"email":"${env.ADMIN_EMAIL}","password":"${env.ADMIN_PASSWORD}"}' | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')
    curl -s ${url}/classifications -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"partnumber":"BC847BLT1G"}'
`)

closeWithGrace({ delay: config.shutdownGraceMs }, async ({ err }) => {
  if (err) app.log.error({ err }, 'fatal error; shutting down')
  await app.close()
  for (const close of closers.reverse()) await close()
})

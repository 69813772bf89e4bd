// `npm run simulator`: the AI server simulator on SIMULATOR_HOST:SIMULATOR_PORT, publishing through REDIS_URL.
// SIMULATOR_PROFILE=real-server plays the real AI server's code instead of the contract.
import { hostname } from 'node:os'
import closeWithGrace from 'close-with-grace'
import { envSchema } from 'env-schema'
import { Type, type Static } from '@sinclair/typebox'
import { createRedisBus } from '../services/bus/redis-bus.js'
import { environment } from '../environment.js'
import { buildSimulator, SIMULATOR_PROFILES } from './app.js'

const EnvSchema = Type.Object({
  SIMULATOR_PORT: Type.Integer({ default: 5001, minimum: 0, maximum: 65535 }),
  SIMULATOR_HOST: Type.String({ default: '127.0.0.1', minLength: 1 }),
  REDIS_URL: Type.String({ pattern: '^rediss?://' }),
  SIMULATOR_STEPS: Type.Integer({ default: 5, minimum: 0, maximum: 10_000 }),
  SIMULATOR_STEP_MS: Type.Integer({ default: 200, minimum: 0, maximum: 600_000 }),
  SIMULATOR_PROFILE: Type.Union(SIMULATOR_PROFILES.map((p) => Type.Literal(p)), { default: 'contract' }),
  // real-server profile: which code (see src/simulator/real-server-jobs.ts), how long an agent run
  // lasts (the real one: minutes, up to 1,800 s per LLM call), and how long one of its seconds is.
  SIMULATOR_REAL_VARIANT: Type.Union([Type.Literal('as-written'), Type.Literal('as-intended')], { default: 'as-written' }),
  SIMULATOR_AGENT_MS: Type.Integer({ default: 60_000, minimum: 0, maximum: 7_200_000 }),
  SIMULATOR_SECOND_MS: Type.Integer({ default: 1_000, minimum: 0, maximum: 60_000 }),
})

let env: Static<typeof EnvSchema>
try {
  env = envSchema<Static<typeof EnvSchema>>({ schema: EnvSchema, data: environment(), env: false, dotenv: false })
} catch (err) {
  console.error(`simulator: invalid environment: ${(err as Error).message}`)
  process.exit(2)
}

// The bus exists before the app (the app needs it), so its few lines are written in the app logger's JSON shape.
const busLog = {
  info: (obj: object, msg: string) => writeLogLine(30, obj, msg),
  warn: (obj: object, msg: string) => writeLogLine(40, obj, msg),
}

const bus = await createRedisBus(env.REDIS_URL, busLog).catch((err: Error) => {
  console.error(`simulator: cannot connect to Redis at ${env.REDIS_URL}: ${err.message}`)
  process.exit(1)
})
const app = await buildSimulator({
  bus,
  steps: env.SIMULATOR_STEPS,
  stepMs: env.SIMULATOR_STEP_MS,
  profile: env.SIMULATOR_PROFILE,
  realServer: { variant: env.SIMULATOR_REAL_VARIANT, agentMs: env.SIMULATOR_AGENT_MS, secondMs: env.SIMULATOR_SECOND_MS },
  logger: true,
})
app.log.info({ profile: env.SIMULATOR_PROFILE }, 'simulator profile')

closeWithGrace({ delay: 5000, logger: app.log }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'simulator crashed')
  else app.log.info({ signal }, 'simulator shutting down')
  await app.close()
  await bus.close()
})

try {
  await app.listen({ port: env.SIMULATOR_PORT, host: env.SIMULATOR_HOST })
} catch (err) {
  app.log.error({ err }, 'simulator could not listen')
  await bus.close()
  process.exit(1)
}

function writeLogLine(level: number, obj: object, msg: string): void {
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, hostname: hostname(), ...obj, msg })}\n`)
}

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { freePort } from '../../src/services/free-port.js'
import { ADMIN } from './stack.js'

// The real gateway as a separate process (`node --import tsx src/server.ts`), configured only by
// its environment, as production runs it: for tests that restart it, put nginx in front of it, or
// point a browser or curl at it.

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const MAX_LOG_LINES = 20_000

export interface GatewayProcessOptions {
  databaseUrl: string
  redisUrl: string
  aiServerUrl: string
  /** Fixed port (a free one by default); kept across restarts. */
  port?: number
  /** More environment variables (override the defaults below). */
  env?: Record<string, string>
  /** A name for error messages and log prefixes. */
  name?: string
}

export interface GatewayProcess {
  name: string
  port: number
  url: string
  /** Every line the process wrote (stdout and stderr), across restarts; JSON log lines parsed. */
  logs: Array<Record<string, any>>
  /** Starts the process and resolves once GET /ready answers 200. */
  start(): Promise<void>
  /** SIGTERM (graceful: streams get a retry hint), then waits for the exit. */
  stop(): Promise<void>
  /** SIGKILL: a crash. */
  kill(): Promise<void>
  /** stop() then start() on the same port. */
  restart(): Promise<void>
  readonly running: boolean
}

export const GATEWAY_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789'

export async function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const port = options.port ?? (await freePort())
  const name = options.name ?? `gateway:${port}`
  const url = `http://127.0.0.1:${port}`
  const logs: GatewayProcess['logs'] = []
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    DATABASE_URL: options.databaseUrl,
    REDIS_URL: options.redisUrl,
    AI_SERVER_URL: options.aiServerUrl,
    AI_REQUEST_TIMEOUT: '5s',
    JWT_SECRET: GATEWAY_JWT_SECRET,
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    SHUTDOWN_GRACE: '3s',
    ...options.env,
  }

  const record = (stream: 'stdout' | 'stderr') => {
    let partial = ''
    return (chunk: Buffer) => {
      partial += chunk.toString()
      let newline: number
      while ((newline = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, newline)
        partial = partial.slice(newline + 1)
        if (!line.trim()) continue
        let entry: Record<string, any>
        try { entry = JSON.parse(line) } catch { entry = { stream, msg: line } }
        if (logs.length < MAX_LOG_LINES) logs.push(entry)
        if (process.env.TEST_GATEWAY_LOGS) process.stderr.write(`[${name}] ${line}\n`)
      }
    }
  }

  const start = async () => {
    if (child) throw new Error(`${name} is already running`)
    const spawned = spawnTied(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
    child = spawned
    spawned.stdout!.on('data', record('stdout'))
    spawned.stderr!.on('data', record('stderr'))
    exited = new Promise((resolve) => spawned.once('exit', () => { if (child === spawned) child = undefined; resolve() }))
    // A bound, not a pace: a busy machine takes long to load and compile the gateway.
    const deadline = Date.now() + 180_000
    for (;;) {
      if (spawned.exitCode !== null || spawned.signalCode !== null) {
        const tail = logs.slice(-15).map((l) => l.msg ?? JSON.stringify(l)).join('\n')
        throw new Error(`${name} exited during start (code ${spawned.exitCode}):\n${tail}`)
      }
      const ready = await request(`${url}/ready`, { headersTimeout: 2_000, bodyTimeout: 2_000 })
        .then(async (res) => { await res.body.dump(); return res.statusCode === 200 }, () => false)
      if (ready) return
      if (Date.now() > deadline) throw new Error(`${name} not ready after 180 s`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  const signal = async (sig: 'TERM' | 'KILL') => {
    const running = child
    if (!running) return
    signalTied(running, sig)
    const timer = setTimeout(() => signalTied(running, 'KILL'), 15_000)
    await exited
    clearTimeout(timer)
  }

  const handle: GatewayProcess = {
    name, port, url, logs,
    start,
    stop: () => signal('TERM'),
    kill: () => signal('KILL'),
    async restart() { await signal('TERM'); await start() },
    get running() { return child !== undefined },
  }
  await start()
  return handle
}

/** Whether this process logged a request with this id (the gateway honours a given x-request-id). */
export function servedRequest(gateway: GatewayProcess, requestId: string): boolean {
  return gateway.logs.some((line) => line.reqId === requestId)
}

// A child that cannot outlive the test process, even one killed by a timeout: it runs under a small
// shell that holds the read end of the child's stdin pipe and signals the child when a line arrives
// (the signal to send) or when the pipe closes because the test process died.
const TIE = [
  'exec 3<&0',
  '"$@" </dev/null & pid=$!',
  '( read -r sig <&3; kill -s "${sig:-TERM}" "$pid" 2>/dev/null ) & watcher=$!',
  'wait "$pid"; code=$?',
  'kill "$watcher" 2>/dev/null',
  'exit "$code"',
].join('\n')

/** Spawns `command` tied to this process (see TIE); stop it with signalTied. stdio[0] must be 'pipe'. */
export function spawnTied(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn('/bin/sh', ['-c', TIE, 'tied', command, ...args], options)
  child.stdin?.on('error', () => {}) // the shell already gone: nothing left to signal
  return child
}

export function signalTied(child: ChildProcess, signal: 'TERM' | 'KILL' | 'QUIT' | 'INT'): void {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.stdin?.write(`${signal}\n`)
}

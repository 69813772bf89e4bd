import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../src/services/free-port.js'
import { stopWhenGone } from './watchdog.js'

export interface RedisServerHandle {
  url: string
  port: number
  stop(): Promise<void>
  /** Start again on the same port after stop (an outage and its end). */
  start(): Promise<void>
  /** SIGSTOP: the server keeps its connections and answers nothing (a hung or swapping Redis). */
  freeze(): void
  /** SIGCONT after freeze. */
  thaw(): void
}

/** A real redis-server (Debian's package) on a free loopback port, without persistence. */
export async function startRedisServer(): Promise<RedisServerHandle> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'nexa-test-redis-'))
  const pidFile = join(dir, 'redis.pid')
  stopWhenGone([{ pidFile, signal: 'KILL' }], [dir])
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--pidfile', pidFile], { stdio: 'ignore' })
    child.on('error', (err) => {
      throw new Error(`redis-server could not start (is it installed?): ${err.message}`)
    })
    await waitForPort(port, 10_000)
  }
  const stop = async () => {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null) return
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve())
      running.kill('SIGKILL')
    })
    rmSync(pidFile, { force: true }) // SIGKILL leaves it; its pid may be another process's by now
  }
  process.once('exit', () => { child?.kill('SIGKILL'); rmSync(dir, { recursive: true, force: true }) })
  await start()
  return { url: `redis://127.0.0.1:${port}`, port, stop, start, freeze: () => child?.kill('SIGSTOP'), thaw: () => child?.kill('SIGCONT') }
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' })
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nothing listening on port ${port} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

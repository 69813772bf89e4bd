import { fileURLToPath } from 'node:url'
import { freePort } from '../../src/services/free-port.js'
import { exited, spawnNode, stopChild } from './procs.js'

const SERVER = fileURLToPath(new URL('./reference-server.ts', import.meta.url))

export interface Reference {
  pid: number
  port: number
  stop(): Promise<void>
}

/** Starts the bare reference server (reference-server.ts) as its own process. */
export async function startReference(redisUrl: string): Promise<Reference> {
  const port = await freePort()
  const child = spawnNode(SERVER, [], { ipc: true, inheritOutput: true, env: { PORT: String(port), REDIS_URL: redisUrl } })
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    void exited(child).then(() => reject(new Error('the reference server exited during start')))
  })
  return { pid: child.pid!, port, stop: () => stopChild(child, 5_000) }
}

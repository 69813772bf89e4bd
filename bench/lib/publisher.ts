// Plays the AI server's side of progress: PUBLISHes `processing` messages round-robin on the
// streams' channels at a steady rate, each carrying the monotonic time of its publication.
import { Redis } from 'ioredis'
import { nowNs } from './sse-client.js'
import type { PublisherCommand, PublisherReply } from './protocol.js'

let redis: Redis | undefined
let channels: string[] = []
let counters = new Int32Array(0)
// Progress numbers must stay within the contract's bounds (0..1,000,000).
const TOTAL = 1_000_000

const send = (reply: PublisherReply) => process.send!(reply)

async function publish(ratePerSec: number, count: number): Promise<PublisherReply> {
  const client = redis!
  let sent = 0
  let next = 0
  let maxLagMs = 0
  const start = nowNs()
  await new Promise<void>((resolve, reject) => {
    const tick = () => {
      const now = nowNs()
      const due = Math.min(count, Math.floor(((now - start) / 1e9) * ratePerSec) + 1)
      // How far behind schedule the oldest message of this tick is: the publisher's own lag.
      if (due > sent) maxLagMs = Math.max(maxLagMs, (now - start) / 1e6 - (sent / ratePerSec) * 1000)
      while (sent < due) {
        const index = next
        next = (next + 1) % channels.length
        const current = ++counters[index]!
        const message = `{"status":"processing","job_id":null,"progress":{"current":${current},"total":${TOTAL},"message":"${nowNs()}"}}`
        client.publish(channels[index]!, message).catch(reject)
        sent++
      }
      if (sent < count) setTimeout(tick, 1)
      else resolve()
    }
    tick()
  })
  await client.ping() // every PUBLISH before it has been answered
  return { type: 'published', published: sent, elapsedMs: (nowNs() - start) / 1e6, perChannel: counters.slice(), maxLagMs }
}

async function handle(command: PublisherCommand): Promise<PublisherReply> {
  switch (command.cmd) {
    case 'channels':
      redis ??= new Redis(command.redisUrl, { connectionName: 'bench-publisher', maxRetriesPerRequest: 1 })
      channels = command.channels
      counters = new Int32Array(channels.length)
      await redis.ping()
      return { type: 'ready' }
    case 'publish':
      return publish(command.ratePerSec, command.count)
    case 'close':
      await redis?.quit()
      redis = undefined
      return { type: 'ready' }
  }
}

process.on('message', (command: PublisherCommand) => {
  handle(command).then(send, (err: Error) => send({ type: 'error', message: err.stack ?? err.message }))
})
process.on('disconnect', () => process.exit(0))
send({ type: 'ready' })

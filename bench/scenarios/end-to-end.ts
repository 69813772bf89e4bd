// Scenario 5: end to end. N concurrent single jobs, each from its POST to its `done` event, with the
// simulator pacing every job over 5 pauses of 20 ms: the gateway's overhead above those 100 ms.
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { LoadPool, split } from '../lib/load-pool.js'
import { check, distribution, round } from '../lib/report.js'
import type { EndToEndResult } from '../lib/protocol.js'
import type { BenchContext, ScenarioOutcome } from '../lib/context.js'
import { nowNs } from '../lib/sse-client.js'

// SIMULATOR_STEPS=4: progress 0/4..4/4 then done, one pause before each message after the first.
const STEPS = 4
const STEP_MS = 20
const SIMULATOR_MS = (STEPS + 1) * STEP_MS

export async function endToEndScenario(ctx: BenchContext): Promise<ScenarioOutcome> {
  const { stack } = ctx
  const count = ctx.smoke ? 50 : 1_000
  const tag = randomBytes(4).toString('hex').toUpperCase()
  const partnumbers = Array.from({ length: count }, (_, i) => `E2E-${tag}-${i}`)
  await stack.startSimulator(STEPS, STEP_MS)
  const gateway = await stack.startGateway()

  // The simulator's own time per job, seen on Redis: its first message to its last.
  const watcher = new Redis(stack.redisUrl, { connectionName: 'bench-watcher' })
  const firstSeen = new Map<string, number>()
  const spans: number[] = []
  watcher.on('pmessage', (_p: string, channel: string, message: string) => {
    const at = nowNs()
    if (!firstSeen.has(channel)) firstSeen.set(channel, at)
    if (message.includes('"status":"done"')) spans.push((at - firstSeen.get(channel)!) / 1e6)
  })
  await watcher.psubscribe('progress-*')

  const pool = await LoadPool.start(2)
  let results: EndToEndResult[]
  try {
    ctx.log(`gateway: ${count} concurrent jobs, POST to done`)
    const shares = split(partnumbers, pool.size)
    results = await pool.all<EndToEndResult>((i) => ({
      cmd: 'end-to-end', target: { host: '127.0.0.1', port: gateway.port }, token: stack.token, partnumbers: shares[i]!, timeoutMs: 60_000,
    }), 180_000)
  } finally {
    await pool.stop()
    watcher.disconnect()
    await stack.stopGateway()
  }

  const totals = results.flatMap((r) => [...r.totalMs])
  const accepts = results.flatMap((r) => [...r.acceptMs])
  const errors: Record<string, number> = {}
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v
  const done = results.reduce((n, r) => n + r.done, 0)
  const total = distribution(totals)
  const overhead = distribution(totals.map((t) => t - SIMULATOR_MS))
  const accept = distribution(accepts)
  const simulator = distribution(spans)

  return {
    name: 'end-to-end',
    title: `5. End to end: ${count} concurrent single jobs, POST to done, simulator pacing ${STEPS + 1} x ${STEP_MS} ms = ${SIMULATOR_MS} ms`,
    table: [
      ['metric', 'gateway', 'reference', 'gateway / reference'],
      ['jobs done', `${done} of ${count}`, '-', '-'],
      ['POST to done p50 / p99 / max', `${total.p50} / ${total.p99} / ${total.max} ms`, '-', '-'],
      [`overhead above ${SIMULATOR_MS} ms p50 / p99`, `${overhead.p50} / ${overhead.p99} ms`, '-', '-'],
      ['of which POST to 202 p50 / p99', `${accept.p50} / ${accept.p99} ms`, '-', '-'],
      ['simulator\'s own first-to-done p50 / p99 (seen on Redis)', `${simulator.p50} / ${simulator.p99} ms`, '-', '-'],
      ['errors', JSON.stringify(errors), '-', '-'],
    ],
    checks: [
      check('5. every job reaches done', `${count}`, `${done}, errors ${JSON.stringify(errors)}`, done === count, true),
      check('5. overhead above the simulator p50', 'reported', `${overhead.p50} ms`, true),
      check('5. overhead above the simulator p99', 'reported', `${overhead.p99} ms`, true),
    ],
    figures: { jobs: count, simulator_ms: SIMULATOR_MS, total_ms: total, overhead_ms: overhead, accept_ms: accept, simulator_span_ms: simulator, errors, done },
  }
}

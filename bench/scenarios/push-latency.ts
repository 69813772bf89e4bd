// Scenario 2: push latency. N open streams; progress messages published on their channels at a
// steady rate, each carrying its publication time (monotonic clock): latency from PUBLISH to the
// client's parse of the event, none lost or reordered, Redis' client count flat.
import { LoadPool, Publisher } from '../lib/load-pool.js'
import { sleep, startMeter, type Meter } from '../lib/procs.js'
import { check, distribution, round, versus, type Check, type Distribution } from '../lib/report.js'
import { startReference } from '../lib/reference.js'
import { summarizeProfile, profileIn, type ProfileSummary } from '../lib/cpuprofile.js'
import { channelsOf, closeStreams, openStreams, received, record, waitForDelivery, type StreamTarget } from '../lib/streams.js'
import type { BenchContext, ScenarioOutcome } from '../lib/context.js'
import { nowNs } from '../lib/sse-client.js'

interface Phase {
  ratePerSec: number
  seconds: number
}

interface PhaseResult {
  ratePerSec: number
  published: number
  achievedRate: number
  publisherMaxLagMs: number
  received: number
  lost: number
  outOfOrder: number
  streamsBehind: number
  latencyMs: Distribution
  /** The load processes' own event-loop delay meanwhile (part of every latency they measure). */
  loadLoopDelayMs: { p99: number; max: number }
  /** The gateway's own event-loop delay meanwhile (from its metrics; none for the reference). */
  serverLoopDelayMs?: { p99: number; max: number }
  /** From the last PUBLISH until every message had reached its stream (or nothing more came). */
  deliveredAfterMs: number
  serverCpuPercent: number
  server: Meter
  /** Gateway only: time after the last PUBLISH until PostgreSQL held every progress message. */
  databaseCatchUpSeconds?: number | null
  window: { fromNs: number; toNs: number }
}

interface Run {
  opened: number
  redisBefore?: Awaited<ReturnType<BenchContext['stack']['redisClients']>>
  redisAfter?: Awaited<ReturnType<BenchContext['stack']['redisClients']>>
  phases: PhaseResult[]
  endedByServer: Record<string, number>
}

async function progressRows(ctx: BenchContext): Promise<number> {
  const { rows } = await ctx.stack.db.query(`SELECT count(*)::int AS n FROM job_events WHERE type = 'progress'`)
  return rows[0].n
}

async function run(ctx: BenchContext, pool: LoadPool, target: StreamTarget, ids: string[], phases: Phase[]): Promise<Run> {
  const { stack } = ctx
  const redisBefore = target.label === 'gateway' ? await stack.redisClients() : undefined
  ctx.log(`${target.label}: opening ${ids.length} streams`)
  const opened = await openStreams(pool, target, ids, 400, 120_000)
  const redisAfter = target.label === 'gateway' ? await stack.redisClients() : undefined
  const publisher = await Publisher.start(stack.redisUrl, channelsOf(ids))
  const results: PhaseResult[] = []
  try {
    for (const phase of phases) {
      const count = phase.ratePerSec * phase.seconds
      ctx.log(`${target.label}: ${phase.ratePerSec} messages/s for ${phase.seconds} s`)
      const rowsBefore = target.label === 'gateway' ? await progressRows(ctx) : 0
      await record(pool, true)
      if (target.label === 'gateway') await stack.gatewayLoopDelayMs() // starts the window
      const meter = await startMeter(target.pid)
      const fromNs = nowNs()
      const published = await publisher.publish(phase.ratePerSec, count)
      const toNs = nowNs()
      const server = await meter()
      const serverLoopDelayMs = target.label === 'gateway' ? await stack.gatewayLoopDelayMs() : undefined
      // Late messages are late, not lost: wait for them (until nothing more comes for 5 s).
      const deliveredAfterMs = await waitForDelivery(pool, published.published, 5_000, ctx.smoke ? 20_000 : 120_000)
      const got = await received(pool, published.perChannel)
      await record(pool, false)
      let databaseCatchUpSeconds: number | null | undefined
      if (target.label === 'gateway') {
        // The listener writes every message to PostgreSQL after the streams got it: how far behind is it?
        const deadline = Date.now() + (ctx.smoke ? 30_000 : 180_000)
        databaseCatchUpSeconds = null
        while (Date.now() < deadline) {
          if ((await progressRows(ctx)) - rowsBefore >= published.published) {
            databaseCatchUpSeconds = round((nowNs() - toNs) / 1e9, 1)
            break
          }
          await sleep(250)
        }
      }
      results.push({
        ratePerSec: phase.ratePerSec,
        published: published.published,
        achievedRate: round(published.published / (published.elapsedMs / 1000), 0),
        publisherMaxLagMs: round(published.maxLagMs, 1),
        received: got.progressEvents,
        lost: published.published - got.progressEvents,
        outOfOrder: got.outOfOrder,
        streamsBehind: got.behind,
        latencyMs: distribution(got.latencyMs),
        loadLoopDelayMs: { p99: round(got.loadLoopDelayMs.p99, 1), max: round(got.loadLoopDelayMs.max, 1) },
        serverLoopDelayMs: serverLoopDelayMs && { p99: round(serverLoopDelayMs.p99, 1), max: round(serverLoopDelayMs.max, 1) },
        deliveredAfterMs,
        serverCpuPercent: server.cpuPercent,
        server,
        databaseCatchUpSeconds,
        window: { fromNs, toNs },
      })
      const ended = (await received(pool)).ended
      if (Object.keys(ended).length) ctx.log(`${target.label}: streams ended by the server: ${JSON.stringify(ended)}`)
    }
  } finally {
    await publisher.stop()
  }
  const endedByServer = (await received(pool)).ended
  await closeStreams(pool)
  return { opened: opened.opened, redisBefore, redisAfter, phases: results, endedByServer }
}

export async function pushLatencyScenario(ctx: BenchContext): Promise<ScenarioOutcome> {
  const { stack } = ctx
  const count = ctx.smoke ? 300 : 10_000
  const phases: Phase[] = ctx.smoke ? [{ ratePerSec: 300, seconds: 3 }, { ratePerSec: 600, seconds: 2 }] : [{ ratePerSec: 5_000, seconds: 20 }, { ratePerSec: 10_000, seconds: 10 }]
  const gateway = await stack.startGateway(ctx.profile ? { profileName: 'push-latency' } : {})
  const ids = await stack.seedRunningJobs(count, 'latency')
  const pool = await LoadPool.start(2)
  let ours: Run
  let reference: Run
  let profile: ProfileSummary | undefined
  try {
    ours = await run(ctx, pool, { label: 'gateway', pid: gateway.pid, port: gateway.port, headers: { authorization: `Bearer ${stack.token}` } }, ids, phases)
    const stopped = await stack.stopGateway()
    if (stopped?.profileDir) {
      const file = await profileIn(stopped.profileDir)
      // The first (target-rate) phase only: the push path, not the connects before it.
      if (file) profile = await summarizeProfile(file, { window: ours.phases[0]!.window })
    }
    const ref = await startReference(stack.redisUrl)
    try {
      reference = await run(ctx, pool, { label: 'reference', pid: ref.pid, port: ref.port, headers: {} }, ids, phases)
    } finally {
      await ref.stop()
    }
  } finally {
    await pool.stop()
    await stack.deleteSeededJobs()
  }

  const table: string[][] = [['metric', 'gateway', 'reference', 'gateway / reference']]
  const checks: Check[] = []
  ours.phases.forEach((p, i) => {
    const r = reference.phases[i]!
    const at = `${p.ratePerSec} msg/s`
    table.push(
      versus(`${at}: latency p50`, p.latencyMs.p50, r.latencyMs.p50, 'ms'),
      versus(`${at}: latency p99`, p.latencyMs.p99, r.latencyMs.p99, 'ms'),
      versus(`${at}: latency p99.9`, p.latencyMs.p999, r.latencyMs.p999, 'ms'),
      versus(`${at}: latency max`, p.latencyMs.max, r.latencyMs.max, 'ms'),
      [`${at}: server event-loop delay p99 / max`, `${p.serverLoopDelayMs?.p99} / ${p.serverLoopDelayMs?.max} ms`, '-', '-'],
      [`${at}: load processes' event-loop delay p99 / max`, `${p.loadLoopDelayMs.p99} / ${p.loadLoopDelayMs.max} ms`, `${r.loadLoopDelayMs.p99} / ${r.loadLoopDelayMs.max} ms`, '-'],
      [`${at}: received / published`, `${p.received} / ${p.published}`, `${r.received} / ${r.published}`, '-'],
      versus(`${at}: all delivered after the last PUBLISH`, p.deliveredAfterMs / 1000, r.deliveredAfterMs / 1000, 's'),
      [`${at}: out of order, streams behind`, `${p.outOfOrder}, ${p.streamsBehind}`, `${r.outOfOrder}, ${r.streamsBehind}`, '-'],
      versus(`${at}: server CPU (one core = 100)`, p.serverCpuPercent, r.serverCpuPercent, '%'),
      versus(`${at}: server CPU per message`, (p.server.cpuMs / p.published) * 1000, (r.server.cpuMs / r.published) * 1000, 'us'),
      [`${at}: machine busy (all cores)`, `${p.server.machineBusyPercent} %`, `${r.server.machineBusyPercent} %`, '-'],
      [`${at}: PostgreSQL caught up after`, p.databaseCatchUpSeconds === null ? 'not within the wait' : `${p.databaseCatchUpSeconds} s`, '-', '-'],
    )
    checks.push(check(`2. ${at}: none lost or reordered`, '0 lost, 0 reordered', `${p.lost} lost, ${p.outOfOrder} reordered, ${p.streamsBehind} behind`, p.lost === 0 && p.outOfOrder === 0 && p.streamsBehind === 0, true))
  })
  const [base, high] = ours.phases
  const [refBase, refHigh] = reference.phases
  const b = `${base!.ratePerSec}/s`
  const h = `${high!.ratePerSec}/s`
  const ratio = (ours: number, ref: number) => round(ours / ref, 2)
  checks.push(
    check(`2. latency p50 (${b})`, '<= 1 ms', `${base!.latencyMs.p50} ms`, base!.latencyMs.p50 <= 1),
    check(`2. latency p99 (${b})`, '<= 5 ms', `${base!.latencyMs.p99} ms`, base!.latencyMs.p99 <= 5),
    check(`2. latency p99.9 (${b})`, '<= 15 ms', `${base!.latencyMs.p999} ms`, base!.latencyMs.p999 <= 15),
    check(`2. latency p99 (${h})`, '<= 10 ms', `${high!.latencyMs.p99} ms`, high!.latencyMs.p99 <= 10),
    check(`2. latency p50 / reference (${b})`, '<= 2.0', ratio(base!.latencyMs.p50, refBase!.latencyMs.p50), ratio(base!.latencyMs.p50, refBase!.latencyMs.p50) <= 2),
    check(`2. latency p99 / reference (${b})`, '<= 2.0', ratio(base!.latencyMs.p99, refBase!.latencyMs.p99), ratio(base!.latencyMs.p99, refBase!.latencyMs.p99) <= 2),
    check(`2. latency p99 / reference (${h})`, '<= 2.0', ratio(high!.latencyMs.p99, refHigh!.latencyMs.p99), ratio(high!.latencyMs.p99, refHigh!.latencyMs.p99) <= 2),
    check('2. Redis clients do not grow with streams', `${ours.redisBefore!.connected}`, `${ours.redisAfter!.connected} (gateway: ${ours.redisAfter!.gatewayConnections} connections, ${ours.redisAfter!.gatewaySubscribed} subscribed)`,
      ours.redisBefore!.connected === ours.redisAfter!.connected && ours.redisAfter!.gatewaySubscribed === 1, true),
  )
  return {
    name: 'push-latency',
    title: `2. Push latency: ${count} open streams, progress published at a steady rate (smoke: ${ctx.smoke})`,
    table,
    checks,
    figures: { streams: count, gateway: ours, reference, profile },
  }
}

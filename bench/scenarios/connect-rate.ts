// Scenario 3: connect rate. N streams opened as fast as the server takes them (each with its token
// check and its database snapshot), then a reconnect storm: every stream drops and comes back at once.
import { LoadPool } from '../lib/load-pool.js'
import { sleep, startMeter, type Meter } from '../lib/procs.js'
import { check, round, versus } from '../lib/report.js'
import { startReference } from '../lib/reference.js'
import { summarizeProfile, profileIn, type ProfileSummary } from '../lib/cpuprofile.js'
import { closeStreams, openStreams, storm, type Opened, type StreamTarget } from '../lib/streams.js'
import type { BenchContext, ScenarioOutcome } from '../lib/context.js'
import { nowNs } from '../lib/sse-client.js'

/** Connects waiting for their first event at once, over all load processes. */
const INFLIGHT = 512

interface Run {
  rate: Opened
  server: Meter
  storm: Opened
  window: { fromNs: number; toNs: number }
}

async function run(ctx: BenchContext, pool: LoadPool, target: StreamTarget, ids: string[]): Promise<Run> {
  // Warm-up, as for a process that has been serving for a while.
  await openStreams(pool, target, ids.slice(0, Math.min(500, ids.length)), 100)
  await closeStreams(pool)
  await sleep(ctx.smoke ? 200 : 2_000)
  ctx.log(`${target.label}: opening ${ids.length} streams, ${INFLIGHT} connects in flight`)
  const meter = await startMeter(target.pid)
  const fromNs = nowNs()
  const rate = await openStreams(pool, target, ids, INFLIGHT, 120_000)
  const toNs = nowNs()
  const server = await meter()
  await sleep(ctx.smoke ? 200 : 2_000)
  ctx.log(`${target.label}: reconnect storm of ${ids.length} streams`)
  const stormed = await storm(pool, ids.length, 120_000)
  await closeStreams(pool)
  return { rate, server, storm: stormed, window: { fromNs, toNs } }
}

const hints = (h: Record<string, number>) => Object.entries(h).map(([ms, n]) => `${ms} ms x${n}`).slice(0, 4).join(', ') + (Object.keys(h).length > 4 ? `, ... (${Object.keys(h).length} values)` : '')

export async function connectRateScenario(ctx: BenchContext): Promise<ScenarioOutcome> {
  const { stack } = ctx
  const count = ctx.smoke ? 300 : 10_000
  const gateway = await stack.startGateway(ctx.profile ? { profileName: 'connect-rate' } : {})
  const ids = await stack.seedRunningJobs(count, 'connect')
  const pool = await LoadPool.start(2)
  let ours: Run
  let reference: Run
  let profile: ProfileSummary | undefined
  try {
    ours = await run(ctx, pool, { label: 'gateway', pid: gateway.pid, port: gateway.port, headers: { authorization: `Bearer ${stack.token}` } }, ids)
    const stopped = await stack.stopGateway()
    if (stopped?.profileDir) {
      const file = await profileIn(stopped.profileDir)
      if (file) profile = await summarizeProfile(file, { window: ours.window })
    }
    const ref = await startReference(stack.redisUrl)
    try {
      reference = await run(ctx, pool, { label: 'reference', pid: ref.pid, port: ref.port, headers: {} }, ids)
    } finally {
      await ref.stop()
    }
  } finally {
    await pool.stop()
    await stack.deleteSeededJobs()
  }

  // Distinct retry values are what spreads real clients' reconnects.
  const retryValues = Object.keys(ours.storm.retryHints).length
  return {
    name: 'connect-rate',
    title: `3. Connect rate: ${count} streams opened as fast as accepted (${INFLIGHT} in flight), then all reconnecting at once`,
    table: [
      ['metric', 'gateway', 'reference', 'gateway / reference'],
      versus('connects per second', ours.rate.perSecond, reference.rate.perSecond, '/s'),
      versus('connect to snapshot p50', ours.rate.connectMs.p50, reference.rate.connectMs.p50, 'ms'),
      versus('connect to snapshot p99', ours.rate.connectMs.p99, reference.rate.connectMs.p99, 'ms'),
      versus('server CPU per connect', ours.server.cpuMs / ours.rate.opened, reference.server.cpuMs / reference.rate.opened, 'ms'),
      versus('server CPU (one core = 100)', ours.server.cpuPercent, reference.server.cpuPercent, '%'),
      ['machine busy (all cores)', `${ours.server.machineBusyPercent} %`, `${reference.server.machineBusyPercent} %`, '-'],
      ['opened / failed', `${ours.rate.opened} / ${ours.rate.failed}`, `${reference.rate.opened} / ${reference.rate.failed}`, '-'],
      versus('storm: all back after', ours.storm.elapsedMs / 1000, reference.storm.elapsedMs / 1000, 's'),
      versus('storm: connect p99', ours.storm.connectMs.p99, reference.storm.connectMs.p99, 'ms'),
      ['storm: opened / failed', `${ours.storm.opened} / ${ours.storm.failed}`, `${reference.storm.opened} / ${reference.storm.failed}`, '-'],
      ['storm: errors', JSON.stringify(ours.storm.errors), JSON.stringify(reference.storm.errors), '-'],
      ['retry: hints sent', hints(ours.storm.retryHints), hints(reference.storm.retryHints), '-'],
    ],
    checks: [
      check('3. connect rate', '>= 1,000/s', `${round(ours.rate.perSecond, 0)}/s`, ours.rate.perSecond >= 1_000),
      check('3. all streams opened', `${count}, no errors`, `${ours.rate.opened}, errors ${JSON.stringify(ours.rate.errors)}`, ours.rate.opened === count, true),
      check('3. reconnect storm without errors', `${count} back, 0 errors`, `${ours.storm.opened} back, errors ${JSON.stringify(ours.storm.errors)}`, ours.storm.opened === count && ours.storm.failed === 0, true),
      check('3. retry: hint with jitter', 'several distinct values', `${retryValues} distinct (${hints(ours.storm.retryHints)})`, retryValues > 1),
    ],
    figures: { streams: count, inflight: INFLIGHT, gateway: ours, reference, profile },
  }
}

// Scenario 4: job starts. POST /classifications for distinct part numbers against the simulator
// answering at once: first the capacity (closed loop, a fixed number in flight), then the target
// rate (open loop: sent on schedule whatever the answers do); every accepted job must end up
// finished and stored, counted in PostgreSQL.
import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { LoadPool, split } from '../lib/load-pool.js'
import { sleep, startMeter, type Meter } from '../lib/procs.js'
import { check, distribution, round, type Distribution } from '../lib/report.js'
import { summarizeProfile, profileIn, type ProfileSummary } from '../lib/cpuprofile.js'
import type { PostJobsResult } from '../lib/protocol.js'
import type { BenchContext, ScenarioOutcome } from '../lib/context.js'
import { nowNs } from '../lib/sse-client.js'

interface Phase {
  label: string
  sent: number
  accepted: number
  perSecond: number
  statuses: Record<string, number>
  latencyMs: Distribution
  server: Meter
  jobIds: string[]
  window: { fromNs: number; toNs: number }
}

async function drive(ctx: BenchContext, pool: LoadPool, label: string, partnumbers: string[], mode: { ratePerSec: number; inFlight: number; seconds: number }): Promise<Phase> {
  const { stack } = ctx
  const gateway = stack.gateway!
  const timeoutMs = ctx.smoke ? 10_000 : 30_000
  ctx.log(`gateway: ${label}`)
  const shares = split(partnumbers, pool.size)
  const meter = await startMeter(gateway.pid)
  const fromNs = nowNs()
  const results = await pool.all<PostJobsResult>((i) => ({
    cmd: 'post-jobs', baseUrl: gateway.url, token: stack.token, partnumbers: shares[i]!,
    ratePerSec: mode.ratePerSec / pool.size, connections: mode.ratePerSec > 0 ? 64 : Math.max(1, Math.round(mode.inFlight / pool.size)),
    durationMs: mode.seconds * 1000, timeoutMs,
  }), mode.seconds * 1000 + timeoutMs + 60_000)
  const toNs = nowNs()
  const server = await meter()
  const statuses: Record<string, number> = {}
  for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v
  const jobIds = results.flatMap((r) => r.jobIds)
  const firstSend = Math.min(...results.map((r) => r.firstSendNs))
  const lastAnswer = Math.max(...results.map((r) => r.lastAnswerNs))
  return {
    label,
    sent: results.reduce((n, r) => n + r.sent, 0),
    accepted: jobIds.length,
    perSecond: round(jobIds.length / ((lastAnswer - firstSend) / 1e9), 0),
    statuses,
    latencyMs: distribution(results.flatMap((r) => [...r.acceptedMs])),
    server,
    jobIds,
    window: { fromNs, toNs },
  }
}

export async function jobStartsScenario(ctx: BenchContext): Promise<ScenarioOutcome> {
  const { stack } = ctx
  const tag = randomBytes(4).toString('hex').toUpperCase()
  const names = (phase: string, count: number) => Array.from({ length: count }, (_, i) => `BENCH-${tag}-${phase}-${i}`)
  const capacity = { ratePerSec: 0, inFlight: 32, seconds: ctx.smoke ? 3 : 10 }
  // Offered a little above the target, so that keeping up shows as reaching it.
  const target = { ratePerSec: ctx.smoke ? 100 : 1_100, inFlight: 0, seconds: ctx.smoke ? 2 : 10 }

  await stack.startSimulator(5, 0) // answers at once and publishes the whole job at once
  await stack.startGateway(ctx.profile ? { profileName: 'job-starts' } : {})
  const pool = await LoadPool.start(2)
  let phases: Phase[]
  try {
    const closed = await drive(ctx, pool, `capacity: ${capacity.inFlight} requests in flight for ${capacity.seconds} s`, names('C', 100_000), capacity)
    await sleep(ctx.smoke ? 1_000 : 5_000)
    const open = await drive(ctx, pool, `target: ${target.ratePerSec}/s offered for ${target.seconds} s`, names('O', target.ratePerSec * target.seconds), target)
    phases = [closed, open]
  } finally {
    await pool.stop()
  }

  // Every accepted job finished and stored: counted in PostgreSQL.
  const accepted = phases.flatMap((p) => p.jobIds)
  ctx.log(`waiting for the ${accepted.length} accepted jobs to be finished and stored`)
  const waitFrom = nowNs()
  const deadline = Date.now() + (ctx.smoke ? 60_000 : 300_000)
  let stored = { done: 0, failed: 0, live: 0, classified: 0 }
  let storedAfterSeconds: number | null = null
  while (Date.now() < deadline) {
    const { rows } = await stack.db.query(
      `SELECT count(*) FILTER (WHERE status = 'DONE')::int AS done, count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
              count(*) FILTER (WHERE status IN ('QUEUED', 'RUNNING'))::int AS live,
              count(*) FILTER (WHERE status = 'DONE' AND classification_id IS NOT NULL)::int AS classified
         FROM jobs WHERE id = ANY($1::uuid[])`,
      [accepted],
    )
    stored = rows[0]
    if (stored.live === 0) {
      storedAfterSeconds = round((nowNs() - waitFrom) / 1e9, 1)
      break
    }
    await sleep(500)
  }
  const stopped = await stack.stopGateway()
  let profile: ProfileSummary | undefined
  if (stopped?.profileDir) {
    const file = await profileIn(stopped.profileDir)
    // The capacity phase: the gateway as busy as it gets, at a steady pace.
    if (file) profile = await summarizeProfile(file, { window: phases[0]!.window })
  }

  const [closed, open] = phases
  const perJob = (ms: number, p: Phase) => round(ms / Math.max(1, p.accepted), 2)
  const cpuPerJob = (p: Phase) => `${perJob(p.server.cpuMs, p)} ms (${p.server.cpuPercent} % of a core)`
  // What the rest of the machine spends on a job bounds the rate whatever the gateway does.
  const outsideGateway = (p: Phase) => perJob(p.server.machineBusyMs - p.server.cpuMs, p)
  const ceiling = (p: Phase) => round((availableParallelism() * 1000) / Math.max(0.01, outsideGateway(p)), 0)
  const othersPerJob = (p: Phase) =>
    Object.entries(p.server.cpuMsByKind)
      .filter(([kind, ms]) => kind !== 'gateway' && ms > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, ms]) => `${kind} ${perJob(ms, p)}`)
      .join(', ')
  const row = (name: string, f: (p: Phase) => string) => [name, f(closed!), f(open!)]
  return {
    name: 'job-starts',
    title: `4. Job starts: POST /classifications, distinct part numbers, simulator answering at once (${closed!.label}; ${open!.label})`,
    table: [
      ['metric', 'capacity (closed loop)', 'target rate (open loop)'],
      row('sent / accepted (202)', (p) => `${p.sent} / ${p.accepted}`),
      row('accepted per second', (p) => `${p.perSecond}/s`),
      row('answers by status', (p) => JSON.stringify(p.statuses)),
      row('accept latency p50 / p99 / max', (p) => `${p.latencyMs.p50} / ${p.latencyMs.p99} / ${p.latencyMs.max} ms`),
      row('server CPU per accepted job', cpuPerJob),
      row('machine busy (all cores)', (p) => `${p.server.machineBusyPercent} %`),
      row('machine CPU per accepted job (all processes)', (p) => `${perJob(p.server.machineBusyMs, p)} ms`),
      row('of it outside the gateway', (p) => `${outsideGateway(p)} ms: ${othersPerJob(p)}`),
      row('jobs/s this machine could start if the gateway cost nothing', (p) => `${ceiling(p)}/s`),
      ['accepted jobs DONE with a stored classification', `${stored.classified} of ${accepted.length}`, ''],
      ['FAILED / still live', `${stored.failed} / ${stored.live}`, ''],
      ['all stored after the load', storedAfterSeconds === null ? 'not within the wait' : `${storedAfterSeconds} s`, ''],
    ],
    checks: [
      check('4. jobs accepted per second', '>= 1,000/s', `${open!.perSecond}/s offered ${target.ratePerSec}/s (capacity ${closed!.perSecond}/s; the rest of the machine alone allows ${ceiling(closed!)}/s)`, open!.perSecond >= 1_000),
      check('4. accept latency p99', '<= 50 ms', `${open!.latencyMs.p99} ms (capacity phase ${closed!.latencyMs.p99} ms)`, open!.latencyMs.p99 <= 50),
      check('4. every request answered 202', `${open!.sent} x 202`, JSON.stringify(open!.statuses), open!.accepted === open!.sent),
      check('4. every accepted job finished and stored', `${accepted.length} DONE with classification`, `${stored.classified} (failed ${stored.failed}, live ${stored.live})`, stored.classified === accepted.length, true),
    ],
    figures: { phases: phases.map(({ jobIds: _ids, ...p }) => p), accepted: accepted.length, stored, stored_after_seconds: storedAfterSeconds, profile },
  }
}

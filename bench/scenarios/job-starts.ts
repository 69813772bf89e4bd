// Scenario 4: job starts. POST /classifications for distinct part numbers, sent open-loop at a fixed
// rate, against the simulator answering at once; then every job must end up finished and stored.
import { randomBytes } from 'node:crypto'
import { LoadPool, split } from '../lib/load-pool.js'
import { sleep, startMeter } from '../lib/procs.js'
import { check, distribution, round } from '../lib/report.js'
import { summarizeProfile, profileIn, type ProfileSummary } from '../lib/cpuprofile.js'
import type { PostJobsResult } from '../lib/protocol.js'
import type { BenchContext, ScenarioOutcome } from '../lib/context.js'
import { nowNs } from '../lib/sse-client.js'

export async function jobStartsScenario(ctx: BenchContext): Promise<ScenarioOutcome> {
  const { stack } = ctx
  const count = ctx.smoke ? 200 : 10_000
  // Offered a little above the target, so that keeping up shows as reaching it.
  const offered = ctx.smoke ? 100 : 1_100
  const tag = randomBytes(4).toString('hex').toUpperCase()
  const partnumbers = Array.from({ length: count }, (_, i) => `BENCH-${tag}-${i}`)

  await stack.startSimulator(5, 0) // answers at once and publishes the whole job at once
  const gateway = await stack.startGateway(ctx.profile ? { profileName: 'job-starts' } : {})
  const pool = await LoadPool.start(2)
  let results: PostJobsResult[]
  const meter = await startMeter(gateway.pid)
  const fromNs = nowNs()
  try {
    ctx.log(`gateway: ${count} POST /classifications at ${offered}/s`)
    const shares = split(partnumbers, pool.size)
    results = await pool.all<PostJobsResult>((i) => ({
      cmd: 'post-jobs', baseUrl: gateway.url, token: stack.token, partnumbers: shares[i]!,
      ratePerSec: offered / pool.size, connections: 64, timeoutMs: 30_000,
    }), (count / offered) * 1000 + 120_000)
  } finally {
    await pool.stop()
  }
  const toNs = nowNs()
  const server = await meter()

  const statuses: Record<string, number> = {}
  for (const r of results) for (const [k, v] of Object.entries(r.statuses)) statuses[k] = (statuses[k] ?? 0) + v
  const accepted = results.reduce((n, r) => n + r.jobIds.length, 0)
  const firstSend = Math.min(...results.map((r) => r.firstSendNs))
  const lastAnswer = Math.max(...results.map((r) => r.lastAnswerNs))
  const perSecond = accepted / ((lastAnswer - firstSend) / 1e9)
  const all = new Float64Array(results.reduce((n, r) => n + r.acceptedMs.length, 0))
  let at = 0
  for (const r of results) { all.set(r.acceptedMs, at); at += r.acceptedMs.length }
  const latency = distribution(all)

  // Every accepted job finished and stored: counted in PostgreSQL.
  ctx.log(`waiting for ${accepted} jobs to be finished and stored`)
  const deadline = Date.now() + (ctx.smoke ? 60_000 : 600_000)
  let stored = { done: 0, failed: 0, live: 0, classified: 0 }
  let storedAfterSeconds: number | null = null
  while (Date.now() < deadline) {
    const { rows } = await stack.db.query(
      `SELECT count(*) FILTER (WHERE status = 'DONE')::int AS done, count(*) FILTER (WHERE status = 'FAILED')::int AS failed,
              count(*) FILTER (WHERE status IN ('QUEUED', 'RUNNING'))::int AS live,
              count(*) FILTER (WHERE status = 'DONE' AND classification_id IS NOT NULL)::int AS classified
         FROM jobs WHERE partnumber LIKE $1`,
      [`BENCH-${tag}-%`],
    )
    stored = rows[0]
    if (stored.live === 0 && stored.done + stored.failed >= accepted) {
      storedAfterSeconds = round((nowNs() - lastAnswer) / 1e9, 1)
      break
    }
    await sleep(500)
  }
  const stopped = await stack.stopGateway()
  let profile: ProfileSummary | undefined
  if (stopped?.profileDir) {
    const file = await profileIn(stopped.profileDir)
    if (file) profile = await summarizeProfile(file, { window: { fromNs, toNs } })
  }

  return {
    name: 'job-starts',
    title: `4. Job starts: ${count} POST /classifications, distinct part numbers, offered at ${offered}/s, simulator answering at once`,
    table: [
      ['metric', 'gateway', 'reference', 'gateway / reference'],
      ['accepted (202) per second', `${round(perSecond, 0)}/s`, '-', '-'],
      ['answers by status', JSON.stringify(statuses), '-', '-'],
      ['accept latency p50 / p99 / max', `${latency.p50} / ${latency.p99} / ${latency.max} ms`, '-', '-'],
      ['server CPU per accepted job (one core = 100 %)', `${round(server.cpuMs / Math.max(1, results.reduce((n, r) => n + r.jobIds.length, 0)), 2)} ms (${server.cpuPercent} %)`, '-', '-'],
      ['machine busy (all cores)', `${server.machineBusyPercent} %`, '-', '-'],
      ['jobs DONE with a stored classification', `${stored.classified} of ${accepted}`, '-', '-'],
      ['jobs FAILED / still live', `${stored.failed} / ${stored.live}`, '-', '-'],
      ['all stored after the last answer', storedAfterSeconds === null ? 'not within the wait' : `${storedAfterSeconds} s`, '-', '-'],
    ],
    checks: [
      check('4. jobs accepted per second', '>= 1,000/s', `${round(perSecond, 0)}/s`, perSecond >= 1_000),
      check('4. accept latency p99', '<= 50 ms', `${latency.p99} ms`, latency.p99 <= 50),
      check('4. every request accepted', `${count} x 202`, JSON.stringify(statuses), accepted === count, true),
      check('4. every job finished and stored', `${accepted} DONE with classification`, `${stored.classified} (failed ${stored.failed}, live ${stored.live})`, stored.classified === accepted, true),
    ],
    figures: { jobs: count, offered_per_second: offered, accepted, accepted_per_second: round(perSecond, 1), statuses, accept_latency_ms: latency, stored, stored_after_seconds: storedAfterSeconds, server, profile },
  }
}

/**
 * The gateway's load and latency benchmarks (see bench/README.md). Starts real PostgreSQL, Redis and
 * the AI simulator, runs the gateway as its own process (built with tsc, plain node, as in
 * production), drives it from separate load processes, and runs the bare reference server
 * (lib/reference-server.ts) through the same load where that makes sense.
 *
 *   npm run bench                                  every scenario at full scale
 *   npm run bench -- --smoke                       small counts, a few seconds each (CI)
 *   npm run bench -- --only push-latency,connect-rate
 *   npm run bench -- --profile                     gateway under node --cpu-prof; top functions by self time
 *   npm run bench -- --tsx                         run the gateway from src/ with tsx instead of building it
 *   npm run bench -- --no-build                    reuse the last build (node_modules/.cache/nexa-bench/dist) as it is
 *   npm run bench -- --gateway-node-args='--max-semi-space-size=32'   node flags for the gateway process
 *
 * Scenarios: open-streams, push-latency, connect-rate, job-starts, end-to-end, pdf.
 * Prints a table per scenario and a JSON summary; writes bench/results/<scenario>.json and
 * bench/results/summary.json (bench/results/smoke/ with --smoke).
 */
import { parseArgs } from 'node:util'
import { BenchStack, PROFILE_DIR } from './lib/stack.js'
import { killAllChildren } from './lib/procs.js'
import { machine, printChecks, printTable, writeResult, type Check } from './lib/report.js'
import type { BenchContext, Scenario, ScenarioOutcome } from './lib/context.js'
import { openStreamsScenario } from './scenarios/open-streams.js'
import { pushLatencyScenario } from './scenarios/push-latency.js'
import { connectRateScenario } from './scenarios/connect-rate.js'
import { jobStartsScenario } from './scenarios/job-starts.js'
import { endToEndScenario } from './scenarios/end-to-end.js'
import { pdfScenario } from './scenarios/pdf-upload.js'

const SCENARIOS: Record<string, Scenario> = {
  'open-streams': openStreamsScenario,
  'push-latency': pushLatencyScenario,
  'connect-rate': connectRateScenario,
  'job-starts': jobStartsScenario,
  'end-to-end': endToEndScenario,
  pdf: pdfScenario,
}

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    only: { type: 'string' },
    profile: { type: 'boolean', default: false },
    tsx: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'gateway-node-args': { type: 'string' },
  },
})
const smoke = values.smoke!
const names = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : Object.keys(SCENARIOS)
for (const name of names) {
  if (!SCENARIOS[name]) {
    console.error(`unknown scenario "${name}"; known: ${Object.keys(SCENARIOS).join(', ')}`)
    process.exit(2)
  }
}

const started = Date.now()
const log = (line: string) => console.log(`[bench +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}`)

// Bounded in time whatever happens: a stuck run stops itself and everything it started.
const LIMIT_MS = (smoke ? 10 : 90) * 60_000
const watchdog = setTimeout(() => {
  console.error(`benchmark still running after ${LIMIT_MS / 60_000} min: stopping`)
  void shutdown(3)
}, LIMIT_MS)
watchdog.unref()

let stack: BenchStack | undefined
let stopping = false
async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true
    await Promise.race([stack?.stop(), new Promise((r) => setTimeout(r, 30_000))]).catch(() => undefined)
  }
  killAllChildren()
  process.exit(code)
}
process.once('SIGINT', () => void shutdown(130))
process.once('SIGTERM', () => void shutdown(143))

const host = machine()
console.log(`Nexa gateway benchmarks${smoke ? ' (smoke)' : ''}: Node ${host.node}, ${host.cores} cores (${host.cpu}), ${host.memory_gb} GB, load average ${host.loadavg.join(' ')}`)

const outcomes: Array<ScenarioOutcome & { seconds: number; loadavg_after: number[] }> = []
const failures: Array<{ scenario: string; error: string }> = []
try {
  stack = await BenchStack.start({ useTsx: values.tsx!, reuseBuild: values['no-build']!, log })
  stack.gatewayNodeArgs = values['gateway-node-args']?.split(' ').filter(Boolean) ?? []
  const ctx: BenchContext = { stack, smoke, profile: values.profile!, log }
  for (const name of names) {
    log(`scenario ${name}`)
    const begin = Date.now()
    try {
      const outcome = await SCENARIOS[name]!(ctx)
      const result = { ...outcome, seconds: Math.round((Date.now() - begin) / 1000), loadavg_after: machine().loadavg }
      outcomes.push(result)
      printTable(outcome.title, outcome.table)
      printChecks('targets', outcome.checks, smoke)
      const profile = (outcome.figures as { profile?: { top: Array<{ function: string; where: string; selfMs: number; percentOfBusy: number }>; byOrigin: Array<{ origin: string; selfMs: number; percentOfBusy: number }> } }).profile
      if (profile) {
        printTable('gateway CPU profile of the measured phase: top functions by self time', [
          ['function', 'where', 'self ms', '% of busy'],
          ...profile.top.slice(0, 15).map((f) => [f.function, f.where, String(f.selfMs), String(f.percentOfBusy)]),
        ])
        printTable('... and by origin', [['origin', 'self ms', '% of busy'], ...profile.byOrigin.map((o) => [o.origin, String(o.selfMs), String(o.percentOfBusy)])])
      }
      await writeResult(outcome.name, { benchmark: outcome.name, ...host, smoke, title: outcome.title, seconds: result.seconds, loadavg_after: result.loadavg_after, checks: outcome.checks, figures: outcome.figures }, smoke)
    } catch (err) {
      log(`scenario ${name} failed: ${(err as Error).stack ?? err}`)
      failures.push({ scenario: name, error: (err as Error).message })
      // Whatever it left running, a fresh start for the next scenario.
      await stack.stopGateway().catch(() => undefined)
      await stack.deleteSeededJobs().catch(() => undefined)
    }
  }
} catch (err) {
  log(`benchmark could not run: ${(err as Error).stack ?? err}`)
  failures.push({ scenario: 'setup', error: (err as Error).message })
} finally {
  await stack?.stop().catch(() => undefined)
  stack = undefined
}

const checks: Check[] = outcomes.flatMap((o) => o.checks)
printChecks(`all targets${smoke ? ' (smoke run: timing targets are not judged at this scale)' : ''}`, checks, smoke)
if (values.profile) console.log(`\nraw CPU profiles (open in Chrome DevTools > Performance): ${PROFILE_DIR}`)
const summary = {
  benchmark: 'summary',
  ...host,
  loadavg_end: machine().loadavg,
  smoke,
  seconds: Math.round((Date.now() - started) / 1000),
  scenarios: outcomes.map((o) => ({ name: o.name, seconds: o.seconds, loadavg_after: o.loadavg_after })),
  checks,
  failures,
}
if (names.length === Object.keys(SCENARIOS).length) await writeResult('summary', summary, smoke)
console.log(JSON.stringify(summary))

const broken = failures.length > 0 || checks.some((c) => c.correctness && !c.pass)
clearTimeout(watchdog)
await shutdown(broken ? 1 : 0)

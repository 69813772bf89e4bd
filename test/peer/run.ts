// `npm run test:peer -- <exported Nexa-AI-Agents source>`: the gateway against the REAL AI server's
// code (see test/peer/README.md). Not part of `npm test`.
import { parseArgs } from 'node:util'
import { writeFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import pg from 'pg'
import { ADMIN, createDatabase, startServices } from '../helpers/stack.js'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js'
import { identifySource, pipFreeze, pythonVenv, startRealAiServer, startSimulatedAiServer, type AiServer } from './real-ai-server.js'
import { signIn, WireTap } from './observe.js'
import { batch, killedMidJob, overlapping, probeDirectly, serverDown, single, type Context, type Outcome } from './scenarios.js'

const USAGE = `usage: npm run test:peer -- <path of the exported Nexa-AI-Agents source> [options]
       npm run test:peer -- --simulator [options]

  --commit <id>     the commit the source was exported from (printed in the report)
  --as-intended     run the real code with Report.send_successful_response's arguments in order
  --simulator       the simulator's real-server profile instead of the real code (to compare)
  --venv <dir>      the Python venv to make or reuse (default node_modules/.cache/nexa-peer/venv)
  --deadline <s>    JOB_DEADLINE of the late-answer phase (default 6)
  --out <file>      also write the report (Markdown) to this file
  --ai-log <file>   write everything the AI server printed (its own prints, tracebacks, the fake agent's decisions)`

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    commit: { type: 'string' },
    'as-intended': { type: 'boolean', default: false },
    simulator: { type: 'boolean', default: false },
    venv: { type: 'string' },
    deadline: { type: 'string', default: '6' },
    out: { type: 'string' },
    'ai-log': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (values.help || (!values.simulator && positionals.length !== 1)) {
  console.error(USAGE)
  process.exit(values.help ? 0 : 2)
}
const deadlineSeconds = Number(values.deadline)
const asIntended = values['as-intended']!
const say = (line: string) => process.stderr.write(`[peer] ${line}\n`)

const t0 = performance.now()
const clock = () => (performance.now() - t0) / 1000
const cleanups: Array<() => Promise<unknown>> = []
let exitCode = 0

try {
  const source = values.simulator ? undefined : await identifySource(positionals[0]!, values.commit)
  if (source && !source.sameAsModelled) say(`note: these files differ from the commit the simulator models: ${source.differing.join(', ')}`)
  const python = source ? await pythonVenv(values.venv, say) : undefined
  const pythonPackages = python ? await pipFreeze(python) : undefined

  say('starting PostgreSQL and redis-server')
  const services = await startServices()
  cleanups.push(() => services.stop())
  const redisPort = Number(new URL(services.redis.url).port)
  const databaseUrl = await createDatabase(services.postgres.adminUrl)
  const db = new pg.Pool({ connectionString: databaseUrl, max: 3 })
  db.on('error', () => {})
  cleanups.push(() => db.end())

  const tap = await WireTap.open(services.redis.url, clock)
  cleanups.push(() => tap.close())

  say(source ? `starting the real AI server from ${source.path}` : 'starting the simulator (real-server profile)')
  const ai: AiServer = source
    ? await startRealAiServer({ python: python!, source, redisPort, asIntended, agentSeconds: 1 })
    : await startSimulatedAiServer({ redisUrl: services.redis.url, asIntended, agentSeconds: 1 })
  cleanups.push(() => ai.close())

  const gatewayEnv = (deadline: string) => ({
    JOB_DEADLINE: deadline, JOB_SWEEP_INTERVAL: '500ms', AI_BATCH_SIZE: '2', AI_REQUEST_TIMEOUT: '10s',
    RATE_LIMIT_MAX: '1000000', RATE_LIMIT_USER_MAX: '1000000', USER_MAX_ACTIVE_JOBS: '1000', LOG_LEVEL: 'warn',
  })
  const startGateway = async (deadline: string): Promise<GatewayProcess> => {
    const gateway = await startGatewayProcess({ databaseUrl, redisUrl: services.redis.url, aiServerUrl: ai.url, name: `gateway (JOB_DEADLINE ${deadline})`, env: gatewayEnv(deadline) })
    cleanups.push(() => gateway.stop())
    return gateway
  }

  const outcomes: Outcome[] = []
  const record = (o: Outcome) => { outcomes.push(o); say(`done: ${o.name}`) }

  // Phase 1: the gateway's default JOB_DEADLINE (15 min): nothing is late.
  say('phase 1: JOB_DEADLINE 15 min')
  const gateway1 = await startGateway('15m')
  const ctx1: Context = { user: await signIn(gateway1, db, ADMIN.email, ADMIN.password), tap, ai, deadlineSeconds: 15 * 60, clock }
  // The demo single takes 29 s of the server's own sleeps: it runs while the others do.
  const demo = single(ctx1, 'single, demo part number', '7', 'BC847BLT1G', 45, ['app/simul.py run_single_simul: 6 progress steps 4 s apart, then 5 s, then the canned result'])
  record(await single(ctx1, 'single, any other part number', '-', 'LM358N', 10))
  record(await batch(ctx1, 'batch with an agent error; retry', '8', ['LM358N', 'TL072CP', 'X-AGENTERR'], 20, { retry: true }))
  record(await batch(ctx1, 'batch, answers naming another or no part number', '2, 3, 5', ['M-1-ALT', 'M-2-NOPN', 'M-3'], 20))
  record(await batch(ctx1, 'batch, failures whose text contains another part number', '4', ['10K', 'R10K'], 20))
  record(await batch(ctx1, 'batch, part numbers with a space', '3', ['BC847 BLT1G', 'LM 358N'], 20))
  record(await batch(ctx1, 'batch of 5 in chunks of 2: progress seen by the user', '6', ['P-1', 'P-2', 'P-3', 'P-4', 'P-5'], 20, { sse: true }))
  for (const o of await overlapping(ctx1)) record(o)
  record(await demo)
  await gateway1.stop()

  // Phase 2: a short JOB_DEADLINE, so that the real server's slow answers come after it.
  say(`phase 2: JOB_DEADLINE ${deadlineSeconds} s`)
  const gateway2 = await startGateway(`${deadlineSeconds}s`)
  const ctx2: Context = { user: await signIn(gateway2, db, ADMIN.email, ADMIN.password), tap, ai, deadlineSeconds, clock }
  const lateSingle = single(ctx2, 'late answer, single (demo part number)', '1', 'CL10C330JB8NNNC', 45,
    [`the demo's last progress is 20 s in, its result 29 s in: 9 s of silence against a JOB_DEADLINE of ${deadlineSeconds} s`])
  record(await batch(ctx2, 'late answer, batch (agent run of 10 s)', '1', ['L-1', 'L-2-SLOW10'], 25))
  record(await lateSingle)
  record(await killedMidJob(ctx2))
  for (const o of await serverDown(ctx2)) record(o)
  await gateway2.stop()
  say('probing the AI server directly')
  const probe = await probeDirectly(ctx2)
  await sleep(200)

  const sourceText = source ? `${source.path}${source.commit ? ` (commit ${source.commit})` : ''}; ${source.sameAsModelled ? 'its modelled files are those of the commit the simulator models' : `files differing from the modelled commit: ${source.differing.join(', ')}`}; Python packages: ${pythonPackages}` : 'none (simulator)'
  const report = render(ai.label, sourceText, outcomes, deadlineSeconds, probe)
  process.stdout.write(report)
  if (values.out) await writeFile(values.out, report)
  if (values['ai-log']) await writeFile(values['ai-log'], `${ai.output.join('\n')}\n`)
  if (source) {
    const agentLines = ai.output.filter((l) => l.startsWith('[fake agent]')).length
    say(`the real server printed ${ai.output.length} lines (${agentLines} from the fake agent)`)
  }
} catch (err) {
  exitCode = 1
  console.error(`[peer] failed: ${(err as Error).stack ?? err}`)
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => say(`cleanup: ${(err as Error).message}`))
}
process.exit(exitCode)

function render(label: string, sourceText: string, outcomes: Outcome[], deadline: number, probe: string[]): string {
  const lines = [
    `# Peer run: the gateway against ${label}`,
    '',
    `Source: ${sourceText}. Gateway: JOB_DEADLINE 15 min (phase 1) then ${deadline} s (phase 2), AI_BATCH_SIZE 2.`,
    'Only the language-model agent is fake (test/peer/python/shim); part numbers steer it: SLOWn (n s), AGENTERR (raises), ALT (names <PN>-ALT), NOPN (names none).',
    '',
    '| # | scenario | issue 12 items | AI server sent (answers) | user got | answers lost |',
    '|---|---|---|---|---|---|',
    ...outcomes.map((o, i) => `| ${i + 1} | ${o.name} | ${o.items} | ${o.sentSummary} | ${o.userGotSummary.replace(/\|/g, '\\|')} | ${o.lost.length ? `**${o.lost.length}**` : 'none'} |`),
    '',
  ]
  outcomes.forEach((o, i) => {
    lines.push(`## ${i + 1}. ${o.name}`, '', `Asked: ${o.asked}`, '', 'The AI server published:', '', '```', ...(o.sent.length ? o.sent : ['(nothing)']), '```', '', 'The user got:', '', '```', ...o.userGot, '```', '')
    lines.push(o.lost.length ? `Answers lost (${o.lost.length}):` : 'Answers lost: none', '')
    if (o.lost.length) lines.push('```', ...o.lost, '```', '')
    if (o.notes.length) lines.push(...o.notes.map((n) => `- ${n}`), '')
  })
  lines.push('## The AI server asked directly (no gateway)', '', '```', ...probe, '```', '')
  return `${lines.join('\n')}\n`
}

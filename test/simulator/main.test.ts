import { t as tap, test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { startRedisServer } from '../helpers/redis-server.js'
import { ChannelRecorder, httpCall } from './harness.js'
import { everyVariableEmpty } from '../helpers/env-example.js'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const redis = await startRedisServer()
tap.teardown(() => redis.stop())

/** `npm run simulator` without npm: the same entry point, with only the given environment. */
function runSimulator(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/simulator/main.ts'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number | null, stderr }))
  return { child, exited }
}

test('invalid settings: a clear message and exit code 2', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{}, /REDIS_URL/],
    [{ REDIS_URL: 'http://nope' }, /REDIS_URL/],
    [{ REDIS_URL: redis.url, SIMULATOR_PORT: 'abc' }, /SIMULATOR_PORT/],
    [{ REDIS_URL: redis.url, SIMULATOR_STEPS: '-1' }, /SIMULATOR_STEPS/],
    [{ REDIS_URL: redis.url, SIMULATOR_STEP_MS: '1.5' }, /SIMULATOR_STEP_MS/],
    [{ REDIS_URL: redis.url, SIMULATOR_PROFILE: 'real' }, /SIMULATOR_PROFILE/],
    [{ REDIS_URL: redis.url, SIMULATOR_PROFILE: 'real-server', SIMULATOR_REAL_VARIANT: 'fixed' }, /SIMULATOR_REAL_VARIANT/],
    [{ REDIS_URL: redis.url, SIMULATOR_AGENT_MS: '-5' }, /SIMULATOR_AGENT_MS/],
  ]
  const outcomes = await Promise.all(cases.map(([env]) => runSimulator(env).exited))
  cases.forEach(([env, message], i) => {
    t.equal(outcomes[i]!.code, 2, JSON.stringify(env))
    t.match(outcomes[i]!.stderr, message)
  })
})

test('a variable set to an empty value counts as not set: every default applies', async (t) => {
  // As a deployment template leaves them: every variable of .env.example present and empty.
  const { child, exited } = runSimulator({ ...everyVariableEmpty(), REDIS_URL: redis.url })
  t.teardown(() => child.kill('SIGKILL'))
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  // The default port, 5001, may be taken on a shared machine: trying it is what shows the default applied.
  const triedDefaultPort = () => /listening at http:\/\/127\.0\.0\.1:5001|EADDRINUSE[^\n]*5001/.test(output)
  const outcome = await Promise.race([exited, new Promise<'tried'>((resolve) => {
    const poll = setInterval(() => { if (triedDefaultPort()) { clearInterval(poll); resolve('tried') } }, 50)
    child.once('exit', () => clearInterval(poll))
  })])
  t.not(outcome === 'tried' ? 0 : outcome.code, 2, `not refused as an invalid environment ${outcome === 'tried' ? '' : outcome.stderr}`)
  t.ok(triedDefaultPort(), 'listens (or tries to) on the default 127.0.0.1:5001')
})

test('serves jobs, logs JSON, and exits promptly on SIGTERM in the middle of a job', async (t) => {
  const { child, exited } = runSimulator({ REDIS_URL: redis.url, SIMULATOR_PORT: '0', SIMULATOR_STEPS: '3', SIMULATOR_STEP_MS: '60000' })
  t.teardown(() => child.kill('SIGKILL'))
  const logLines: Array<Record<string, unknown>> = []
  const listening = new Promise<string>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>
      logLines.push(entry)
      const url = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(String(entry.msg))?.[1]
      if (url) resolve(url)
    })
  })
  const url = await listening

  const progress = await ChannelRecorder.open(t, redis.url)
  const answer = await httpCall('POST', `${url}/process/single_partnumber`, { progress_channel: progress.channel, partnumber: 'BC847BLT1G' })
  t.equal(answer.status, 202)
  t.match(await progress.received(1), [{ status: 'processing', progress: { current: 0, total: 3 } }])

  const stopping = Date.now()
  child.kill('SIGTERM')
  const { code } = await exited
  t.equal(code, 0)
  t.ok(Date.now() - stopping < 3000, 'the pending 60 s step did not keep the process alive')
  t.ok(logLines.some((l) => l.signal === 'SIGTERM'), 'the shutdown is logged')
  t.equal(progress.raw.length, 1, 'nothing was published after the signal')
})

test('SIMULATOR_PROFILE=real-server: the real server\'s answers, its agent runs as long as SIMULATOR_AGENT_MS', async (t) => {
  const { child } = runSimulator({ REDIS_URL: redis.url, SIMULATOR_PORT: '0', SIMULATOR_PROFILE: 'real-server', SIMULATOR_AGENT_MS: '200' })
  t.teardown(() => child.kill('SIGKILL'))
  const url = await new Promise<string>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const found = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(String((JSON.parse(line) as { msg?: unknown }).msg))?.[1]
      if (found) resolve(found)
    })
  })
  const progress = await ChannelRecorder.open(t, redis.url)
  const partnumbers = { 'PN-1': { partnumber: 'PN-1' } }
  const invalid = await httpCall('POST', `${url}/process/batch_partnumbers`, { progress_channel: progress.channel, partnumbers: ['PN-1'] })
  t.same([invalid.status, invalid.json()], [200, { error: 'payload inválido' }])
  const startedAt = performance.now()
  const answer = await httpCall('POST', `${url}/process/batch_partnumbers`, { progress_channel: progress.channel, partnumbers })
  t.equal(answer.status, 202)
  const messages = (await progress.received(4)) as Array<{ status: string; error?: string }>
  t.same(messages.map((m) => m.status), ['processing', 'processing', 'failed', 'done'])
  t.equal(messages[2]!.error, 'Erro ao processar partnumberPN-1')
  t.ok(progress.arrivedAt[2]! - startedAt >= 200, 'the agent ran SIMULATOR_AGENT_MS')
})

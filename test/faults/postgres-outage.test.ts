import t0, { type Test } from 'tap'
import { startServices } from '../helpers/stack.js'
import { openEventStream } from '../helpers/sse.js'
import { aiMessage, metricValue, ms, startFaultStack, waitFor, type FaultStack } from './support/fault-stack.js'
import { signalPostgres } from './support/processes.js'
import { reliabilitySection } from './reliability-report.js'

// PostgreSQL goes away under a running gateway: stopped (connections refused), then frozen
// (connections open, nothing answers). The test stops and starts the server it started.

const { test } = t0
const QUERY_TIMEOUT_MS = 2_000
const services = await startServices()
const stack = await startFaultStack(services, { env: { DATABASE_QUERY_TIMEOUT: `${QUERY_TIMEOUT_MS}ms`, JOB_SWEEP_INTERVAL: '500ms' } })
const report = reliabilitySection({
  id: 'postgres-outage', order: 2, title: 'PostgreSQL stops or freezes mid-job', file: 'test/faults/postgres-outage.test.ts',
  summary: `The test stops its PostgreSQL (fast shutdown) and later freezes it (SIGSTOP on every server process) while a job runs and its stream is open (DATABASE_QUERY_TIMEOUT ${QUERY_TIMEOUT_MS / 1000} s).`,
})
t0.teardown(async () => {
  await report.save()
  await stack.close()
  await services.stop()
})
const token = await stack.login()
const postgres = services.postgres.handle!

async function classify(partnumber: string) {
  await stack.scenario(partnumber, { outcome: 'silent', silentAfter: 1, stepMs: 10 }) // the test plays the AI server
  const res = await stack.api('POST', '/classifications', { token, body: { partnumber, reclassify: true } })
  if (res.status !== 202) throw new Error(`classify ${partnumber}: ${res.status} ${JSON.stringify(res.body)}`)
  return { ...res.body, channel: await stack.channelOf(res.body.id) }
}

const jobRow = async (id: string) => (await stack.db.query('SELECT status, error, classification_id FROM jobs WHERE id = $1', [id])).rows[0]

/** Every kind of request that needs PostgreSQL, during the outage: 503 JSON, quickly. */
async function requestsDuringOutage(t: Test, s: FaultStack, jobId: string, eventsUrl: string) {
  const calls: Array<[string, string, unknown?]> = [
    ['GET', `/jobs/${jobId}`],
    ['GET', '/jobs?limit=5'],
    ['POST', '/classifications', { partnumber: 'PG-DOWN-NEW', reclassify: true }],
    ['GET', '/partnumbers?q=bc847'],
    ['GET', '/auth/me'],
    ['POST', '/auth/login', { email: 'admin@nexa.test', password: 'admin-password-123' }],
  ]
  const latencies: number[] = []
  for (const [method, path, body] of calls) {
    const res = await s.api(method, path, { token: path.includes('token=') || path === '/auth/login' ? undefined : token, body, timeoutMs: 30_000 })
    latencies.push(res.ms)
    t.equal(res.status, 503, `${method} ${path.replace(/token=.*/, 'token=…')}: 503`)
    t.equal(res.body?.code, 'database_unavailable', 'with the JSON error')
    t.equal(res.headers['retry-after'], '5', 'and a Retry-After')
    t.notMatch(JSON.stringify(res.body), /at .*\.(ts|js):\d+|ECONNREFUSED|stack/i, 'no stack, no internals')
  }
  // Event streams answer 200 with only a retry hint and end: EventSource gives up for good on a
  // 503, while this brings it back by itself once the database is reachable again.
  for (const path of [`/jobs/${jobId}/events`, eventsUrl]) {
    const res = await s.api('GET', path, { token: path.includes('token=') ? undefined : token, timeoutMs: 30_000 })
    latencies.push(res.ms)
    t.equal(res.status, 200, `GET ${path.replace(/token=.*/, 'token=…')}: 200 with a retry hint`)
    t.match(String(res.body), /^retry: \d+/, 'a retry hint')
    t.notMatch(String(res.body), /event:/, 'and no event')
  }
  return latencies
}

test('PostgreSQL stopped mid-job: 503s, live progress, the result kept and written when it is back', async (t) => {
  const row = report.row(t, 'PostgreSQL stopped (fast shutdown) mid-job, then started again')
  const job = await classify('PG-STOPPED')
  const stream = await openEventStream(`${stack.url}${job.events_url}`)
  await stream.next('snapshot')
  await stack.publish(job.channel, aiMessage.processing(1, 3))
  await stream.next('progress')
  const errorsBefore = stack.logs.filter((l) => l.level >= 50).length

  const downAt = performance.now()
  await postgres.stop()
  const ready = await stack.api('GET', '/ready')
  t.equal(ready.status, 503, '/ready is not ready')
  t.same(ready.body, { status: 'not_ready', database: 'unavailable', bus: 'ok' })
  const latencies = await requestsDuringOutage(t, stack, job.id, job.events_url)

  await stack.publish(job.channel, aiMessage.processing(2, 3))
  t.equal((await stream.next('progress')).data.current, 2, 'the open stream keeps forwarding progress')
  await stack.publish(job.channel, aiMessage.done('PG-STOPPED'))
  await waitFor(() => stack.app.jobListener.stats().queuedMessages >= 2, 5_000)
  const queued = metricValue(await stack.metrics(), 'nexa_job_listener_queued_messages')
  t.ok(queued >= 2, 'the progress and the result wait in memory')
  await t.rejects(stream.next('done', 1_500), 'done is not told before it is written')
  const healthDuring = await stack.api('GET', '/health')
  t.equal(healthDuring.status, 200, '/health: the process itself is fine')

  const startAt = performance.now()
  await postgres.start()
  const outageMs = startAt - downAt
  const readyAfter = await waitFor(async () => (await stack.api('GET', '/ready')).status === 200, 20_000)
  const done = await stream.next('done', 20_000)
  const writtenAfter = performance.now() - startAt
  t.equal(done.data.result.ncm, '85412120', 'the stream gets the stored result once it is written')
  const stored = await jobRow(job.id)
  t.equal(stored.status, 'DONE')
  t.ok(stored.classification_id)
  const { rows } = await stack.db.query(
    `SELECT (SELECT count(*)::int FROM job_events WHERE job_id = $1 AND type = 'progress') AS progress,
            (SELECT count(*)::int FROM job_events WHERE job_id = $1 AND final) AS finals,
            (SELECT count(*)::int FROM classifications WHERE job_id = $1) AS results`, [job.id])
  t.same(rows[0], { progress: 3, finals: 1, results: 1 }, 'every message received during the outage was written, once')
  await waitFor(() => stack.taskResults.some((m) => m.job_id === job.id), 5_000)
  t.equal(stack.taskResults.filter((m) => m.job_id === job.id).length, 1, 'one task_results message')
  t.equal((await stack.api('GET', `/jobs/${job.id}`, { token })).status, 200, 'requests are served again')

  const metrics = await stack.metrics()
  t.ok(metricValue(metrics, 'nexa_reconnects_total', { service: 'postgres' }) >= 1, 'the reconnect is counted')
  t.ok(metricValue(metrics, 'nexa_database_unavailable_total', { where: 'listener' }) >= 1)
  t.ok(metricValue(metrics, 'nexa_database_unavailable_total', { where: 'request' }) >= latencies.length)
  t.equal(metricValue(metrics, 'nexa_job_listener_queued_messages'), 0, 'nothing is left waiting')
  t.equal(stack.logs.filter((l) => l.level >= 50).length, errorsBefore, 'no error-level log (no 500, no crash)')

  row.happened = 'Event streams (by Bearer and by stream token) answered 200 with only a `retry:` hint, so EventSource reconnects by itself; every other request that needs PostgreSQL (job, list, new job, search, me, login) answered 503 '
    + '`{code: "database_unavailable"}` with `Retry-After: 5` and no stack; `/ready` 503 `{database: "unavailable"}`, `/health` 200; '
    + 'the open stream kept forwarding progress; the progress and the `done` received meanwhile waited in memory and were written when PostgreSQL was back '
    + '(3 progress events, 1 final event, 1 classification, 1 `task_results`), and only then was `done` sent on the stream.'
  row.figures = {
    'answer latency (max of 8 kinds)': ms(Math.max(...latencies)),
    'outage': ms(outageMs),
    'ready again after start': ms(readyAfter),
    'result written and streamed after start': ms(writtenAfter),
    'messages held during the outage': queued,
  }
})

test('PostgreSQL frozen (SIGSTOP): requests answer 503 within the query timeout instead of hanging', async (t) => {
  const row = report.row(t, 'PostgreSQL frozen (SIGSTOP on every server process: connections open, no answers) for at least 5 s')
  const job = await classify('PG-FROZEN')
  const stream = await openEventStream(`${stack.url}${job.events_url}`)
  await stream.next('snapshot')
  await stack.publish(job.channel, aiMessage.processing(1, 3))
  await stream.next('progress')

  const frozen = await signalPostgres(postgres.port, 'SIGSTOP')
  let thawed = false
  t.teardown(async () => { if (!thawed) await signalPostgres(postgres.port, 'SIGCONT') })
  const frozenAt = performance.now()
  const ready = await stack.api('GET', '/ready', { timeoutMs: 30_000 })
  t.equal(ready.status, 503, '/ready is not ready')
  const latencies = [ready.ms]
  const concurrent = await Promise.all([
    stack.api('GET', `/jobs/${job.id}`, { token, timeoutMs: 30_000 }),
    stack.api('GET', '/jobs?limit=5', { token, timeoutMs: 30_000 }),
    stack.api('POST', '/classifications', { token, body: { partnumber: 'PG-FROZEN-NEW', reclassify: true }, timeoutMs: 30_000 }),
  ])
  for (const res of concurrent) {
    latencies.push(res.ms)
    t.equal(res.status, 503, '503')
    t.equal(res.body?.code, 'database_unavailable')
  }
  await stack.publish(job.channel, aiMessage.processing(2, 3))
  t.equal((await stream.next('progress')).data.current, 2, 'the open stream keeps forwarding progress')
  await stack.publish(job.channel, aiMessage.done('PG-FROZEN'))
  const frozenFor = performance.now() - frozenAt
  if (frozenFor < 5_000) await new Promise((r) => setTimeout(r, 5_000 - frozenFor))

  await signalPostgres(postgres.port, 'SIGCONT')
  thawed = true
  const thawAt = performance.now()
  const done = await stream.next('done', 20_000)
  const writtenAfter = performance.now() - thawAt
  t.equal(done.data.status, 'DONE')
  t.equal((await jobRow(job.id)).status, 'DONE', 'the result received while frozen is stored')
  await waitFor(async () => (await stack.api('GET', '/ready')).status === 200, 20_000)
  const bound = QUERY_TIMEOUT_MS * 2 + 1_000
  t.ok(Math.max(...latencies) < bound, `every answer within the query timeout and a margin (${bound} ms)`)

  row.happened = `\`/ready\`, job reads, listing and a new job answered 503 \`database_unavailable\` after DATABASE_QUERY_TIMEOUT instead of hanging; `
    + 'progress kept streaming; the `done` received while frozen was written and streamed after the thaw.'
  row.figures = {
    'server processes frozen': frozen,
    '503 latency (max of 4, concurrent)': ms(Math.max(...latencies)),
    'DATABASE_QUERY_TIMEOUT': ms(QUERY_TIMEOUT_MS),
    'result written and streamed after the thaw': ms(writtenAfter),
  }
})

import t0 from 'tap'
import { Redis } from 'ioredis'
import { startServices } from '../helpers/stack.js'
import { openEventStream, stillOpenAfter } from '../helpers/sse.js'
import { aiMessage, metricValue, ms, startFaultStack, waitFor } from './support/fault-stack.js'
import { reliabilitySection } from './reliability-report.js'

// Redis restarts under a running gateway: the test kills the redis-server it started and starts it
// again on the same port, while jobs run and streams are open.

const { test } = t0
const DEADLINE_S = 6
const services = await startServices()
const stack = await startFaultStack(services, { env: { JOB_DEADLINE: `${DEADLINE_S}s`, JOB_SWEEP_INTERVAL: '200ms' } })
// The job that must live through the outage runs on a second instance with the default deadline and
// a database of its own (a sweeper fails the silent jobs of its whole database): how long an outage
// lasts on a busy machine must not decide whether that job survives it.
const lasting = await startFaultStack(services, { simulatorUrl: stack.simulatorUrl })
const report = reliabilitySection({
  id: 'redis-restart', order: 1, title: 'Redis restarts mid-job', file: 'test/faults/redis-restart.test.ts',
  summary: `The test kills its redis-server (SIGKILL) while jobs run and streams are open, waits, and starts it again on the same port (JOB_DEADLINE ${DEADLINE_S} s; the job that lives through the outage runs on a second instance with the default deadline).`,
})
t0.teardown(async () => {
  await report.save()
  await lasting.close()
  await stack.close()
  await services.stop()
})
const token = await stack.login()
const lastingToken = await lasting.login()
const redis = services.redis.handle!

async function classify(partnumber: string, scenario?: Record<string, unknown>) {
  if (scenario) await stack.scenario(partnumber, scenario)
  const res = await stack.api('POST', '/classifications', { token, body: { partnumber, reclassify: true } })
  if (res.status !== 202) throw new Error(`classify ${partnumber}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

const jobRow = async (id: string) => (await stack.db.query('SELECT status, error, classification_id FROM jobs WHERE id = $1', [id])).rows[0]

test('Redis restarts mid-job: reconnect, resubscribe, streams stay open, later results stored, lost messages end by deadline', async (t) => {
  const row = report.row(t, 'Redis killed (SIGKILL) mid-job, then started again on the same port')
  // Before the outage: a job answered from history later on, and the jobs that live through it.
  const known = await classify('REDIS-KNOWN')
  await waitFor(async () => ['DONE', 'FAILED'].includes((await jobRow(known.id)).status), 30_000)
  t.match(await jobRow(known.id), { status: 'DONE', error: null }, 'the job before the outage is done')
  await stack.scenario('REDIS-DRIVEN', { outcome: 'silent', silentAfter: 1, stepMs: 10 }) // the test plays its messages
  const drivenStart = await lasting.api('POST', '/classifications', { token: lastingToken, body: { partnumber: 'REDIS-DRIVEN', reclassify: true } })
  t.equal(drivenStart.status, 202)
  const driven = drivenStart.body
  const dropped = await classify('REDIS-DROPPED', { steps: 50, stepMs: 300 }) // the simulator publishes through the outage
  const drivenChannel = await lasting.channelOf(driven.id)
  const drivenStream = await openEventStream(`${lasting.url}${driven.events_url}`)
  const droppedStream = await openEventStream(`${stack.url}${dropped.events_url}`)
  await drivenStream.next('snapshot')
  await droppedStream.next('snapshot')
  await stack.publish(drivenChannel, aiMessage.processing(1, 3))
  t.equal((await drivenStream.next('progress')).data.current, 1, 'progress flows before the outage')
  await droppedStream.next('progress')
  let streamsEnded = 0
  for (const s of [drivenStream, droppedStream]) void s.ended.then(() => streamsEnded++)

  // The outage.
  const downAt = performance.now()
  await redis.stop()
  const notReadyAfter = await waitFor(async () => (await stack.api('GET', '/ready')).status === 503, 10_000)
  const ready = await stack.api('GET', '/ready')
  t.same(ready.body, { status: 'not_ready', database: 'ok', bus: 'unavailable' }, '/ready says the bus is unavailable')
  await t.rejects(stack.publish(drivenChannel, aiMessage.processing(2, 3)), 'what the AI server publishes now is lost')
  const refused = await stack.api('POST', '/classifications', { token, body: { partnumber: 'REDIS-DURING', reclassify: true } })
  t.equal(refused.status, 503, 'a job that would need the bus is refused, not started deaf')
  t.equal(refused.body.code, 'message_bus_unavailable')
  t.equal((await stack.db.query(`SELECT count(*)::int AS n FROM jobs WHERE partnumber = 'REDIS-DURING'`)).rows[0].n, 0, 'and no job row is left behind')
  const fromHistory = await stack.api('POST', '/classifications', { token, body: { partnumber: 'REDIS-KNOWN' } })
  t.equal(fromHistory.status, 202, 'history answers need no bus: still served')
  t.equal((await stack.api('GET', `/jobs/${dropped.id}`, { token })).status, 200, 'reads are served during the outage')
  await new Promise((r) => setTimeout(r, 1_000))
  t.equal(streamsEnded, 0, 'open streams stay open through the outage')

  // Back.
  await redis.start()
  const reconnectMs = await waitFor(async () => (await stack.api('GET', '/ready')).status === 200, 15_000)
  const outageMs = performance.now() - downAt
  const probe = new Redis(services.redis.url)
  const patterns = Number(await probe.pubsub('NUMPAT'))
  const clients = String(await probe.client('LIST'))
  t.ok(patterns >= 1, 'the progress-* pattern is subscribed again')
  t.match(clients, /name=nexa-gateway-sub .*psub=[1-9]/, 'by the gateway\'s own subscriber connection, by itself')
  // Both instances' subscribers are back before the AI server speaks again.
  await waitFor(async () => (await lasting.api('GET', '/ready')).status === 200, 30_000)
  await waitFor(async () => (String(await probe.client('LIST')).match(/name=nexa-gateway-sub .*psub=[1-9]/g) ?? []).length === 2, 30_000)
  probe.disconnect()

  // A job that finishes after the restart is stored, and its open stream gets the end.
  await stack.publish(drivenChannel, aiMessage.processing(3, 3))
  t.equal((await drivenStream.next('progress')).data.current, 3, 'the stream that lived through the outage gets new progress')
  await stack.publish(drivenChannel, aiMessage.done('REDIS-DRIVEN'))
  const done = await drivenStream.next('done')
  t.equal(done.data.result.ncm, '85412120', 'and the stored result')
  const drivenRow = (await lasting.db.query('SELECT status, classification_id FROM jobs WHERE id = $1', [driven.id])).rows[0]
  t.equal(drivenRow.status, 'DONE')
  t.ok(drivenRow.classification_id, 'the result is stored')
  await waitFor(() => lasting.taskResults.some((m) => m.job_id === driven.id), 30_000)

  // A job started after the outage that then goes silent: an ordinary deadline.
  const quiet = await classify('REDIS-QUIET-AFTER', { outcome: 'silent', silentAfter: 1, stepMs: 10 })

  // The job whose messages Redis dropped ends by its deadline, saying why.
  const failed = await droppedStream.next('failed', (DEADLINE_S + 10) * 1000)
  t.match(failed.data.error, /^Timed out: no word from the AI server for 6 s \(the message bus was down meanwhile; messages published then were lost\)$/, 'the reason says the bus was down')
  t.equal((await jobRow(dropped.id)).status, 'FAILED')
  await waitFor(async () => (await jobRow(quiet.id)).status === 'FAILED', (DEADLINE_S + 10) * 1000)
  t.equal((await jobRow(quiet.id)).error, 'Timed out: no word from the AI server for 6 s', 'silence after the outage is an ordinary timeout')
  // The history answer given during the outage could not be announced then; the sweeper sends it.
  await waitFor(() => stack.taskResults.some((m) => m.job_id === fromHistory.body.id), 20_000)

  const metrics = await stack.metrics()
  t.equal(metricValue(metrics, 'nexa_reconnects_total', { service: 'redis' }), 1, 'one Redis reconnect counted')
  t.equal(metricValue(metrics, 'nexa_jobs_finished_total', { status: 'FAILED', reason: 'deadline_bus_down' }), 1, 'the lost job counted by its reason')
  t.equal(metricValue(metrics, 'nexa_jobs_finished_total', { status: 'FAILED', reason: 'deadline' }), 1)
  t.equal(stack.logs.filter((l) => l.msg === 'redis subscriber connection lost; reconnecting').length, 1, 'the loss is logged once')
  t.equal(stack.taskResults.filter((m) => m.job_id === fromHistory.body.id).length, 1, 'the held-back task_results message went out once')

  row.happened = '`/ready` answered 503 `{bus: "unavailable"}`; new AI jobs got 503 `message_bus_unavailable` (no job row), reads and history answers were served; both open streams stayed open; '
    + 'the subscriber reconnected and re-subscribed `progress-*` by itself; the job finished after the restart was stored and its stream got `progress` then `done`; '
    + 'the job whose messages were published into the outage failed at its deadline with "(the message bus was down meanwhile; messages published then were lost)", a job silent only after the outage with the plain timeout; '
    + 'the `task_results` message of a job finished during the outage was sent by the sweeper afterwards, once.'
  row.figures = {
    'outage seen by /ready after': ms(notReadyAfter),
    'ready again after redis-server started': ms(reconnectMs),
    'total outage': ms(outageMs),
    'nexa_reconnects_total{service="redis"}': 1,
  }
})

test('Redis down for longer than the job deadline: the job fails by its deadline during the outage, and its open stream is told', async (t) => {
  const row = report.row(t, `Redis down for longer than JOB_DEADLINE (${DEADLINE_S} s)`)
  const job = await classify('REDIS-LONG-OUTAGE', { outcome: 'silent', silentAfter: 1, stepMs: 10 })
  const stream = await openEventStream(`${stack.url}${job.events_url}`)
  await stream.next('snapshot')
  await waitFor(async () => (await stack.db.query('SELECT progress_current FROM jobs WHERE id = $1', [job.id])).rows[0].progress_current === 0, 5_000)
  await redis.stop()
  const downAt = performance.now()
  let restarted = false
  t.teardown(async () => { if (!restarted) await redis.start() })
  // The sweeper cannot publish on the job's channel now; this instance's streams are told directly.
  const failed = await stream.next('failed', (DEADLINE_S + 10) * 1000)
  const toldAfter = performance.now() - downAt
  t.match(failed.data, { error: /the message bus was down meanwhile/, timed_out: true })
  t.equal(await stillOpenAfter(stream, 1_000), true, 'the stream stays open for a late answer')
  stream.close()
  t.equal((await stack.api('GET', '/ready')).status, 503, 'still not ready: the outage goes on')
  await redis.start()
  restarted = true
  await waitFor(async () => (await stack.api('GET', '/ready')).status === 200, 15_000)
  await waitFor(() => stack.taskResults.some((m) => m.job_id === job.id), 20_000)
  t.equal(stack.taskResults.filter((m) => m.job_id === job.id).length, 1, 'its task_results message went out once Redis was back')
  row.happened = 'The sweeper failed the silent job at its deadline while Redis was still down, with the bus-outage reason; it could not announce it on the job\'s channel, '
    + 'so it told this instance\'s open stream directly (`failed` with `timed_out: true`; the stream stays open for a late answer); `task_results` went out once Redis was back.'
  row.figures = { 'stream told after the outage began': ms(toldAfter) }
})

test('Redis frozen (SIGSTOP): requests are still answered (rate limits skipped after REDIS_COMMAND_TIMEOUT), /ready says the bus is unavailable, all is well once Redis answers again', async (t) => {
  const row = report.row(t, 'Redis frozen (SIGSTOP): its connections stay open, nothing is answered')
  redis.freeze()
  let frozen = true
  t.teardown(() => { if (frozen) redis.thaw() })
  // Redis stays frozen until the test thaws it, so an answer that comes at all (within the 20 s a
  // client would wait, twenty command timeouts) was not held by Redis, whatever the machine's load.
  const HANG = { timeoutMs: 20_000 }
  const notReadyAfter = await waitFor(async () => (await stack.api('GET', '/ready', HANG)).status === 503, 30_000)
  const ready = await stack.api('GET', '/ready', HANG)
  t.same(ready.body, { status: 'not_ready', database: 'ok', bus: 'unavailable' }, `/ready says the bus is unavailable, answered while Redis is frozen (${Math.round(ready.ms)} ms)`)
  const reads = [await stack.api('GET', '/jobs?limit=5', { token, ...HANG }), await stack.api('GET', '/auth/me', { token, ...HANG })]
  t.same(reads.map((r) => r.status), [200, 200], 'authenticated reads are answered while Redis is frozen (each rate-limit count given up after the command timeout)')
  const slowest = Math.max(...reads.map((r) => r.ms))
  t.comment(`the slowest read during the freeze took ${Math.round(slowest)} ms (REDIS_COMMAND_TIMEOUT 1 s per count)`)

  redis.thaw()
  frozen = false
  const readyAfter = await waitFor(async () => (await stack.api('GET', '/ready')).status === 200, 30_000)
  const after = [await stack.api('GET', '/jobs?limit=5', { token }), await stack.api('GET', '/jobs?limit=5', { token }), await stack.api('GET', '/jobs?limit=5', { token })]
  t.same(after.map((r) => r.status), [200, 200, 200])
  const fast = Math.min(...after.map((r) => r.ms))
  t.ok(fast < slowest, `once Redis answers, requests no longer wait out its command timeout (${Math.round(fast)} ms, ${Math.round(slowest)} ms during the freeze)`)
  const job = await classify('REDIS-AFTER-FREEZE')
  await waitFor(async () => ['DONE', 'FAILED'].includes((await jobRow(job.id)).status), 30_000)
  t.match(await jobRow(job.id), { status: 'DONE', error: null }, 'a job started after the freeze finishes and is stored')

  row.happened = '`/ready` answered 503 `{bus: "unavailable"}` (its PING timed out) instead of hanging; authenticated requests were answered, each rate-limit count given up after `REDIS_COMMAND_TIMEOUT`; '
    + 'once Redis answered again `/ready` was ready, requests were fast again and a new job finished and was stored.'
  row.figures = {
    'outage seen by /ready after': ms(notReadyAfter),
    '/ready answer during the freeze': ms(ready.ms),
    'slowest authenticated read during the freeze': ms(slowest),
    'ready again after SIGCONT': ms(readyAfter),
  }
})

import t0 from 'tap'
import { aiMessage, metricValue, ms, waitFor } from './support/fault-stack.js'
import { startProcessStack } from './support/process-stack.js'
import { openManyStreams, startSlowAiServer } from './support/mass-clients.js'
import { reliabilitySection } from './reliability-report.js'

// SIGTERM to a gateway process holding 1,000 open streams while requests are in flight (their AI
// server call takes 1.5 s). A second instance runs beside it, as behind nginx, and finishes the jobs:
// those the streams follow are ended by the test (playing the AI server) once the first has exited.

const { test } = t0
const STREAMS = 1_000
const STREAM_JOBS = 10
const IN_FLIGHT = 20
const AI_DELAY_MS = 1_500
const stack = await startProcessStack({ simulator: { steps: 3, stepMs: 100 } })
const slowAi = await startSlowAiServer(stack.simulatorUrl, AI_DELAY_MS)
const report = reliabilitySection({
  id: 'graceful-stop', order: 4, title: 'Graceful stop under load', file: 'test/faults/graceful-stop.test.ts',
  summary: `SIGTERM to a gateway process with ${STREAMS.toLocaleString('en')} open event streams and ${IN_FLIGHT} requests in flight (each waiting ${AI_DELAY_MS / 1000} s on the AI server); `
    + 'a second instance runs beside it. SHUTDOWN_GRACE is the production default (8 s).',
})
t0.teardown(async () => {
  await report.save()
  await slowAi.close()
  await stack.close()
})
const loaded = await stack.gateway('gateway-under-load', { aiServerUrl: slowAi.url, env: { SHUTDOWN_GRACE: '8s', AI_REQUEST_TIMEOUT: '10s' } })
const companion = await stack.gateway('gateway-companion')

test(`SIGTERM with ${STREAMS} open streams and ${IN_FLIGHT} requests in flight`, async (t) => {
  const row = report.row(t, `SIGTERM with ${STREAMS.toLocaleString('en')} open streams and ${IN_FLIGHT} requests in flight`)
  const token = await stack.login(loaded.url)
  const jobs = await Promise.all(Array.from({ length: STREAM_JOBS }, async (_, i) => {
    await stack.scenario(`STOP-STREAMED-${i}`, { outcome: 'silent', silentAfter: 1, stepMs: 10 }) // ended by the test, after the stop
    const res = await stack.api(loaded.url, 'POST', '/classifications', { token, body: { partnumber: `STOP-STREAMED-${i}`, reclassify: true } })
    if (res.status !== 202) throw new Error(`job ${i}: ${res.status}`)
    return res.body
  }))

  const openStarted = performance.now()
  const streams = await openManyStreams(STREAMS, (i) => `${loaded.url}${jobs[i % STREAM_JOBS].events_url}`)
  t.equal(streams.filter((s) => s.status === 200).length, STREAMS, `${STREAMS} streams accepted`)
  await waitFor(() => streams.every((s) => s.events.includes('snapshot')), 30_000)
  const openMs = performance.now() - openStarted
  t.equal(metricValue(await stack.metrics(loaded.url), 'nexa_sse_streams_open'), STREAMS, 'the instance counts them open')

  const receivedBefore = slowAi.received
  const inFlight = Array.from({ length: IN_FLIGHT }, (_, i) =>
    stack.api(loaded.url, 'POST', '/classifications', { token, body: { partnumber: `STOP-IN-FLIGHT-${i}`, reclassify: true } }).catch((err: Error) => ({ status: 0, body: err.message, ms: 0, headers: {} })))
  await waitFor(() => slowAi.received >= receivedBefore + IN_FLIGHT, 10_000)

  const signalAt = performance.now()
  await loaded.stop()
  const exitMs = performance.now() - signalAt
  t.ok(exitMs < 10_000, `the process exited within 10 s (${ms(exitMs)})`)
  t.notOk(loaded.logs.some((l) => /killed by timeout/.test(l.msg ?? '')), 'by itself, not by the grace timer')

  const answers = await Promise.all(inFlight)
  t.same(answers.map((a) => a.status), Array(IN_FLIGHT).fill(202), 'every request in flight completed with its 202')
  await waitFor(() => streams.every((s) => s.ended), 5_000)
  const hinted = streams.filter((s) => s.retries.length >= 2).length
  t.equal(hinted, STREAMS, 'every stream got a retry: hint before it was closed')
  const hints = streams.map((s) => s.retries.at(-1)!)
  t.ok(Math.max(...hints) > Math.min(...hints), 'the hints are jittered, so clients do not all come back at once')
  t.notOk(streams.some((s) => s.events.includes('done') || s.events.includes('failed')), 'no stream was told a false end')

  // Nothing lost or half-written: the companion finishes every job, each stored and announced once.
  for (const job of jobs) await stack.publish(job.id, aiMessage.done(job.partnumber))
  const ids = [...jobs.map((j) => j.id), ...answers.map((a) => a.body.id)]
  await waitFor(async () => (await stack.db.query(`SELECT count(*)::int AS n FROM jobs WHERE status = 'DONE'`)).rows[0].n === ids.length, 30_000)
  const { rows } = await stack.db.query(
    `SELECT count(*)::int AS jobs,
            count(*) FILTER (WHERE ai_job_id IS NULL)::int AS without_ai_job,
            count(*) FILTER (WHERE (SELECT count(*) FROM classifications c WHERE c.job_id = j.id) <> 1)::int AS not_one_result,
            count(*) FILTER (WHERE (SELECT count(*) FROM job_events e WHERE e.job_id = j.id AND e.final) <> 1)::int AS not_one_final
       FROM jobs j`)
  t.same(rows[0], { jobs: STREAM_JOBS + IN_FLIGHT, without_ai_job: 0, not_one_result: 0, not_one_final: 0 }, 'every job started, done, with one result and one final event; no stray job')
  await waitFor(() => ids.every((id) => stack.taskResults.some((m) => m.job_id === id)), 15_000).catch(() => {})
  await new Promise((r) => setTimeout(r, 1_000))
  const unannounced = ids.filter((id) => stack.taskResults.filter((m) => m.job_id === id).length !== 1)
  const claims = (await stack.db.query('SELECT id, result_published_at IS NOT NULL AS claimed FROM jobs WHERE id = ANY($1)', [unannounced])).rows
  t.same(claims, [], 'one task_results message per job')
  t.ok(companion.running, 'the companion instance is still up')
  t.notOk(loaded.logs.some((l) => l.level >= 50), 'no error logged by the stopped instance')

  row.happened = `All ${STREAMS} streams received a jittered \`retry:\` hint (${Math.min(...hints)}–${Math.max(...hints)} ms) and were closed, none with a false end; `
    + `all ${IN_FLIGHT} requests in flight completed with 202 and their jobs were started on the AI server; the process exited by itself. `
    + `The companion instance finished every job: ${ids.length} jobs DONE, each with 1 result, 1 final event and 1 \`task_results\` message; no stray or half-written job.`
  row.figures = {
    [`open ${STREAMS} streams`]: ms(openMs),
    'SIGTERM to exit': ms(exitMs),
    'SHUTDOWN_GRACE': '8 s',
  }
})

import t0 from 'tap'
import { randomUUID } from 'node:crypto'
import { startServices } from '../helpers/stack.js'
import { openEventStream, stillOpenAfter } from '../helpers/sse.js'
import { freePort } from '../../src/services/free-port.js'
import { aiMessage, metricValue, ms, startFaultStack, waitFor, type FaultStack, type Metric } from './support/fault-stack.js'
import { reliabilitySection } from './reliability-report.js'

// The AI server misbehaves in every way the contract warns about, over real HTTP and real Redis:
// the simulator answers start requests badly, and the test publishes bad messages on job channels.

const { test } = t0
const REQUEST_TIMEOUT_MS = 1_500
const DEADLINE_S = 5
const services = await startServices()
const stack = await startFaultStack(services, {
  env: { AI_REQUEST_TIMEOUT: `${REQUEST_TIMEOUT_MS}ms`, JOB_DEADLINE: `${DEADLINE_S}s`, JOB_SWEEP_INTERVAL: '200ms' },
})
const refusing = await startFaultStack(services, { env: { AI_SERVER_URL: `http://127.0.0.1:${await freePort()}` }, simulatorUrl: stack.simulatorUrl })
const report = reliabilitySection({
  id: 'ai-misbehaviour', order: 5, title: 'The AI server misbehaves', file: 'test/faults/ai-misbehaviour.test.ts',
  summary: `Start requests answered badly by the contract simulator (or by nothing at all), and bad messages published on job channels over real Redis (AI_REQUEST_TIMEOUT ${REQUEST_TIMEOUT_MS} ms, AI_MAX_RETRIES 3, JOB_DEADLINE ${DEADLINE_S} s).`,
})
t0.teardown(async () => {
  await report.save()
  await refusing.close()
  await stack.close()
  await services.stop()
})
const token = await stack.login()

const jobRow = async (s: FaultStack, id: string) => (await s.db.query('SELECT status, error, progress_current, classification_id FROM jobs WHERE id = $1', [id])).rows[0]
const byOutcome = (metrics: Metric[]) => Object.fromEntries(
  ['applied', 'invalid', 'unmatched', 'late', 'duplicate', 'out_of_order', 'unusable_result'].map((o) => [o, metricValue(metrics, 'nexa_ai_messages_total', { outcome: o })]),
)
const diff = (after: Record<string, number>, before: Record<string, number>) => Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]))
const warningsFor = (s: FaultStack, jobId: string) => s.logs.filter((l) => l.level === 40 && l.jobId === jobId)

const START_FAULTS = [
  { fault: 'refuses connections (nothing listens)', stack: () => refusing, scenario: undefined, error: 'unreachable', reason: /AI server unreachable \(ECONNREFUSED\)/, calls: 4 },
  { fault: `answers too slowly (never, past AI_REQUEST_TIMEOUT ${REQUEST_TIMEOUT_MS} ms)`, stack: () => stack, scenario: 'hang', error: 'timeout', reason: /did not answer within 1500 ms/, calls: 1 },
  { fault: 'answers 500', stack: () => stack, scenario: 'error', error: 'status_5xx', reason: /refused the job with status 500/, calls: 1 },
  { fault: 'answers 503 every time', stack: () => stack, scenario: 'unavailable', error: 'status_5xx', reason: /refused the job with status 503/, calls: 4 },
  { fault: 'answers 400', stack: () => stack, scenario: 'reject', error: 'status_4xx', reason: /refused the job with status 400: Payload rejeitado/, calls: 1 },
  { fault: 'answers 200 with a body that is not JSON', stack: () => stack, scenario: 'garbage', error: 'bad_answer', reason: /did not start the job \(answer without job_id\)/, calls: 1 },
  { fault: 'answers 200 `{"error": ...}` without job_id', stack: () => stack, scenario: 'no_job_id', error: 'bad_answer', reason: /did not start the job: Payload invalido/, calls: 1 },
] as const

for (const [i, f] of START_FAULTS.entries()) {
  test(`AI server ${f.fault}: 502 at once, the job failed with the reason, logged once, counted`, async (t) => {
    const row = report.row(t, `Start request: the AI server ${f.fault}`)
    const s = f.stack()
    const pn = `AI-START-${i}`
    if (f.scenario) await s.scenario(pn, { start: f.scenario })
    const before = await s.metrics()
    const requestsBefore = (await stack.simulatorRequests()).filter((r) => r.body?.partnumber === pn).length
    const res = await s.api('POST', '/classifications', { token: s === stack ? token : await s.login(), body: { partnumber: pn, reclassify: true } })
    t.equal(res.status, 502)
    t.equal(res.body.code, 'ai_server_unavailable')
    t.match(res.body.message, f.reason)
    const row_ = await jobRow(s, res.body.job_id)
    t.equal(row_.status, 'FAILED', 'the job is failed at once, not left waiting')
    t.match(row_.error, f.reason, 'with the reason')
    const after = await s.metrics()
    t.equal(metricValue(after, 'nexa_ai_request_errors_total', { error: f.error }) - metricValue(before, 'nexa_ai_request_errors_total', { error: f.error }), 1, `counted as ${f.error}`)
    t.equal(metricValue(after, 'nexa_jobs_finished_total', { reason: 'ai_start' }) - metricValue(before, 'nexa_jobs_finished_total', { reason: 'ai_start' }), 1)
    t.equal(s.logs.filter((l) => l.jobId === res.body.job_id && l.msg === 'AI server did not start the job').length, 1, 'logged once with the job')
    if (s === stack) {
      const calls = (await stack.simulatorRequests()).filter((r) => r.body?.partnumber === pn).length - requestsBefore
      t.equal(calls, f.calls, f.calls > 1 ? 'retried with backoff (connection errors and 502/503/504 only)' : 'not retried')
    }
    await waitFor(() => s.taskResults.some((m) => m.job_id === res.body.job_id && m.status === 'failed'), 5_000)
    row.happened = `502 \`ai_server_unavailable\` naming the job; job FAILED with "${row_.error}"; ${f.calls > 1 ? `${f.calls} attempts (retried)` : 'not retried'}; one log line; \`nexa_ai_request_errors_total{error="${f.error}"}\` +1; \`task_results\` failed.`
    row.figures = { 'answer time': ms(res.ms) }
  })
}

test('a job that never finishes is failed by its deadline, and told to its stream', async (t) => {
  const row = report.row(t, 'A job that never finishes (the AI server goes silent)')
  await stack.scenario('AI-SILENT', { outcome: 'silent', silentAfter: 1, stepMs: 10 })
  const res = await stack.api('POST', '/classifications', { token, body: { partnumber: 'AI-SILENT', reclassify: true } })
  const started = performance.now()
  const stream = await openEventStream(`${stack.url}${res.body.events_url}`)
  const failed = await stream.next('failed', (DEADLINE_S + 5) * 1000)
  const endedAfter = performance.now() - started
  t.match(failed.data, { error: /^Timed out/, timed_out: true }, 'the open stream is told')
  t.equal(await stillOpenAfter(stream, 1_000), true, 'and stays open for a late answer')
  stream.close()
  t.equal((await jobRow(stack, res.body.id)).error, `Timed out: no word from the AI server for ${DEADLINE_S} s`)
  t.equal(stack.logs.filter((l) => l.jobId === res.body.id && l.msg === 'job failed by deadline').length, 1, 'logged once with the job')
  row.happened = `FAILED "Timed out: no word from the AI server for ${DEADLINE_S} s" by the sweeper; its open stream got \`failed\` (\`timed_out: true\`) and stayed open for a late answer; logged once; counted as \`reason="deadline"\`.`
  row.figures = { 'failed after': ms(endedAfter), JOB_DEADLINE: `${DEADLINE_S} s` }
})

test('bad messages on a running job: nothing crashes, nothing malformed is stored, each is logged once with the job and counted', async (t) => {
  const row = report.row(t, 'Bad messages on a running job\'s channel (11 kinds)')
  await stack.scenario('AI-NOISY', { outcome: 'silent', silentAfter: 1, stepMs: 10 })
  const res = await stack.api('POST', '/classifications', { token, body: { partnumber: 'AI-NOISY', reclassify: true } })
  const jobId = res.body.id
  const channel = await stack.channelOf(jobId)
  await waitFor(async () => (await jobRow(stack, jobId)).progress_current === 0, 5_000)
  const before = byOutcome(await stack.metrics())
  const warningsBefore = warningsFor(stack, jobId).length

  const progress1 = JSON.stringify(aiMessage.processing(1, 3, 'um'))
  const bad: Array<[string, string]> = [
    ['invalid JSON', '{"status": "processing", "progress": {'],
    ['over 1 MB', JSON.stringify(aiMessage.processing(1, 3, 'x'.repeat(1_100_000)))],
    ['unknown status', JSON.stringify({ status: 'exploding', job_id: null })],
    ['wrong types (current is a string)', JSON.stringify({ status: 'processing', job_id: null, progress: { current: 'one', total: 3, message: null } })],
    ['wrong types (error is a number)', JSON.stringify({ status: 'failed', job_id: null, error: 42 })],
    ['not an object', '[1, 2, 3]'],
  ]
  for (const [, raw] of bad) await stack.publish(channel, raw)
  await stack.publish(channel, progress1)
  await stack.publish(channel, progress1) // duplicated
  await stack.publish(channel, JSON.stringify(aiMessage.processing(3, 3, 'tres')))
  await stack.publish(channel, JSON.stringify(aiMessage.processing(2, 3, 'dois'))) // out of order
  const stringResult = JSON.stringify({ status: 'done', job_id: 'job-x', result: 'NCM 8541.21.20' })
  await stack.publish(channel, stringResult) // a string where the result object belongs
  await stack.publish(channel, stringResult) // the end, duplicated
  await stack.publish(channel, JSON.stringify(aiMessage.processing(3, 3, 'depois do fim'))) // after the end
  await waitFor(async () => {
    const d = diff(byOutcome(await stack.metrics()), before)
    return Object.values(d).reduce((a, b) => a + b, 0) >= bad.length + 7
  }, 10_000)
  const counted = diff(byOutcome(await stack.metrics()), before)
  t.same(counted, { applied: 2, invalid: bad.length, unmatched: 0, late: 1, duplicate: 2, out_of_order: 1, unusable_result: 1 }, 'each counted under its outcome')

  const stored = await jobRow(stack, jobId)
  t.equal(stored.status, 'FAILED', 'a result that is a string fails the job')
  t.match(stored.error, /unusable result/)
  t.equal(stored.progress_current, 3, 'progress never goes backwards')
  t.notOk(stored.classification_id, 'no classification stored')
  const events = await stack.db.query(`SELECT type, payload FROM job_events WHERE job_id = $1 ORDER BY id`, [jobId])
  t.same(events.rows.map((e) => e.type), ['progress', 'progress', 'progress', 'progress', 'failed'], 'only well-formed messages were stored, each once')
  t.notOk(JSON.stringify(events.rows).includes('xxxxxxxxxx'), 'not the oversized one')

  const warnings = warningsFor(stack, jobId).slice(warningsBefore)
  const count = (msg: string) => warnings.filter((w) => w.msg === msg).length
  t.equal(count('invalid AI message; ignored'), bad.length, 'each invalid message logged once, with the job')
  t.same(warnings.filter((w) => w.msg === 'invalid AI message; ignored').map((w) => w.reason), [
    'message is not valid JSON', 'message larger than 1 MB', 'unknown status "exploding"', 'processing message with invalid progress fields',
    'failed message whose error is not a string', 'message is not a JSON object',
  ], 'with the reason')
  t.equal(count('repeated AI message; ignored'), 1, 'the duplicate')
  t.equal(count('AI progress went backwards; stored, the job keeps its furthest progress'), 1, 'the out-of-order one')
  t.equal(count('AI server sent an unusable result; stored as a failure'), 1, 'the string result')
  t.equal(count('repeated AI message after the job ended; ignored'), 1, 'the repeated end')
  t.equal(count('AI message after the job ended; ignored'), 1, 'the message after the end')
  t.equal(warnings.length, bad.length + 5, 'and nothing else')
  t.equal((await stack.api('GET', '/ready')).status, 200, 'the gateway is fine')
  t.equal(stack.logs.filter((l) => l.level >= 50).length, 0, 'no error logged')

  row.happened = 'Published on the job\'s channel: invalid JSON, a message over 1 MB, an unknown status, a string `current`, a numeric `error`, a JSON array, a duplicated progress, '
    + 'progress going back (3 then 2), `done` whose result is a string, that `done` again, and progress after the end. Each was logged once with the job id and counted under its outcome '
    + '(invalid 6, duplicate 2, out_of_order 1, unusable_result 1, late 1); the job failed with "AI server sent an unusable result", kept progress 3/3, and only the 4 well-formed progress '
    + 'messages and the final failure were stored; no classification, no error log.'
  row.figures = Object.fromEntries(Object.entries(counted).filter(([, v]) => v > 0).map(([k, v]) => [`nexa_ai_messages_total{outcome="${k}"}`, `+${v}`]))
})

test('a batch result that is a string fails that item only', async (t) => {
  const row = report.row(t, 'Batch: `single_classification` is a plain string instead of an object')
  await stack.scenario('AI-BATCH-STR-A', { stopAfterItems: 0 }) // the test plays the answers
  const res = await stack.api('POST', '/classifications/batch', { token, body: { partnumbers: [{ partnumber: 'AI-BATCH-STR-A' }, { partnumber: 'AI-BATCH-STR-B' }], reclassify: true } })
  t.equal(res.status, 202)
  const { rows: [chunk] } = await stack.db.query('SELECT channel FROM job_chunks WHERE job_id = $1', [res.body.id])
  const result = aiMessage.done('AI-BATCH-STR-B').result
  const said = (pn: string) => `Classificacao encontrada para o partnumber ${pn}`
  await stack.publish(chunk.channel, JSON.stringify({ status: 'partial_result', job_id: 'job-b', current: 1, total: 2, message: said('AI-BATCH-STR-A'), single_classification: 'NCM 85412120' }))
  await stack.publish(chunk.channel, JSON.stringify({ status: 'partial_result', job_id: 'job-b', current: 2, total: 2, message: said('AI-BATCH-STR-B'), single_classification: result }))
  await stack.publish(chunk.channel, JSON.stringify({ status: 'done', job_id: 'job-b' }))
  await waitFor(async () => (await jobRow(stack, res.body.id)).status === 'DONE', 10_000)
  const items = (await stack.db.query('SELECT partnumber, status, error, classification_id FROM job_items WHERE job_id = $1 ORDER BY position', [res.body.id])).rows
  t.equal(items[0].status, 'FAILED')
  t.match(items[0].error, /unusable result/)
  t.notOk(items[0].classification_id, 'nothing stored for it')
  t.equal(items[1].status, 'DONE', 'the other item is stored')
  t.equal(stack.logs.filter((l) => l.jobId === res.body.id && l.msg === 'AI server sent an unusable result; stored as a failure').length, 1, 'logged once with the job')
  t.equal(stack.logs.filter((l) => l.jobId === res.body.id && l.level >= 40).length, 1, 'and nothing else logged')
  row.happened = 'The item was told by the part number in the message text; it FAILED with "AI server sent an unusable result", nothing stored for it; the other item DONE; the batch DONE; logged once, counted as `unusable_result`.'
})

test('messages on channels no job owns are ignored, counted each, logged once per channel', async (t) => {
  const row = report.row(t, 'Messages on a channel no job owns (3 messages)')
  const before = await stack.metrics()
  const channel = `progress-${randomUUID()}`
  for (let i = 0; i < 3; i++) await stack.publish(channel, JSON.stringify(aiMessage.processing(i, 3)))
  await waitFor(async () => metricValue(await stack.metrics(), 'nexa_ai_messages_total', { outcome: 'unmatched' }) - metricValue(before, 'nexa_ai_messages_total', { outcome: 'unmatched' }) === 3, 5_000)
  t.equal(stack.logs.filter((l) => l.channel === channel && l.msg === 'AI message on a channel that no job owns; ignored').length, 1, 'one log line for the channel')
  t.equal((await stack.db.query('SELECT count(*)::int AS n FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE j.channel = $1', [channel])).rows[0].n, 0, 'nothing stored')
  row.happened = 'Ignored; nothing stored; `nexa_ai_messages_total{outcome="unmatched"}` +3; one log line naming the channel (not one per message, so a stray publisher cannot flood the log).'
})

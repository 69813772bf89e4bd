import t0 from 'tap'
import { startServices, startStack, eventually } from '../helpers/stack.js'
import { openEventStream } from '../helpers/sse.js'

const { test } = t0
const services = await startServices()
// Short deadlines only where a test is about them (an instance of their own, open only then): on a
// busy machine any job of this file could go quiet for 3 s, or wait 2 s for the AI server's answer.
const stack = await startStack(services)
t0.teardown(async () => { await stack.close(); await services.stop() })
const token = await stack.login()

async function classify(partnumber: string) {
  return stack.api('POST', '/classifications', { token, body: { partnumber, reclassify: true } })
}

async function jobRow(id: string) {
  return (await stack.db.query('SELECT status, error, ai_job_id FROM jobs WHERE id = $1', [id])).rows[0]
}

for (const [start, pattern] of [['reject', /refused the job with status 400/], ['error', /status 500/], ['no_job_id', /did not start the job/], ['garbage', /did not start the job/], ['hang', /did not answer within 2000 ms/]] as const) {
  test(`AI server start "${start}": the job fails with the reason and the client gets 502 with the job id`, async (t) => {
    const pn = `REFUSE-${start}`.toUpperCase()
    await stack.scenario(pn, { start })
    let res
    if (start === 'hang') {
      const strict = await startStack(services, { databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl, env: { AI_REQUEST_TIMEOUT: '2s' } })
      t.teardown(() => strict.close())
      res = await strict.api('POST', '/classifications', { token, body: { partnumber: pn, reclassify: true } })
    } else res = await classify(pn)
    t.equal(res.status, 502)
    t.equal(res.body.code, 'ai_server_unavailable')
    t.match(res.body.message, pattern)
    t.ok(res.body.job_id, 'the error names the job')
    const row = await jobRow(res.body.job_id)
    t.equal(row.status, 'FAILED')
    t.match(row.error, pattern)
    const message = await eventually(() => stack.taskResults.find((m) => m.job_id === res.body.job_id))
    t.equal(message.status, 'failed')
  })
}

test('503 from the AI server is retried with backoff, then the job starts', async (t) => {
  const pn = 'RETRY-503'
  await stack.scenario(pn, { start: 'unavailable', failTimes: 2 })
  const res = await classify(pn)
  t.equal(res.status, 202)
  const calls = (await stack.simulatorRequests()).filter((r) => r.body?.partnumber === pn)
  t.equal(calls.length, 3, 'two refusals, then the accepted call')
  await eventually(async () => (await jobRow(res.body.id)).status === 'DONE')
})

test('400 from the AI server is never retried', async (t) => {
  const pn = 'NO-RETRY-400'
  await stack.scenario(pn, { start: 'reject' })
  await classify(pn)
  t.equal((await stack.simulatorRequests()).filter((r) => r.body?.partnumber === pn).length, 1)
})

test('messages published before the HTTP answer are not lost', async (t) => {
  const pn = 'EARLY-BIRD'
  await stack.scenario(pn, { publishBeforeAnswer: 2, steps: 3, stepMs: 10 })
  const res = await classify(pn)
  t.equal(res.status, 202)
  await eventually(async () => (await jobRow(res.body.id)).status === 'DONE')
  const { rows } = await stack.db.query(`SELECT payload FROM job_events WHERE job_id = $1 AND type = 'progress' ORDER BY id`, [res.body.id])
  t.same(rows.map((r) => r.payload.progress.current), [0, 1, 2, 3], 'every progress message was recorded, the early ones too')
})

test('a job failing mid-way ends failed, with the AI server\'s reason, on the stream and in the database', async (t) => {
  const pn = 'FAILS-MIDWAY'
  await stack.scenario(pn, { outcome: 'fail', failAfter: 2, stepMs: 30 })
  const res = await classify(pn)
  const stream = await openEventStream(`${stack.url}${res.body.events_url}`)
  const failed = await stream.next('failed')
  t.equal(failed.data.error, 'Partnumber nao encontrado na base de dados de simulacao')
  await stream.ended
  t.equal((await jobRow(res.body.id)).status, 'FAILED')
})

test('a job that goes silent is failed by its deadline, and its open stream is told', async (t) => {
  const pn = 'GOES-SILENT'
  await stack.scenario(pn, { outcome: 'silent', silentAfter: 1, stepMs: 10 })
  const res = await classify(pn)
  const stream = await openEventStream(`${stack.url}${res.body.events_url}`)
  // Its one progress message is stored: from now on the AI server says nothing. Only then does an
  // instance with a 3 s deadline join (same data, same AI server), and it leaves before the retry.
  await eventually(async () => (await stack.db.query('SELECT progress_total FROM jobs WHERE id = $1', [res.body.id])).rows[0].progress_total !== null, 20_000)
  const strict = await startStack(services, { databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl, env: { JOB_DEADLINE: '3s', JOB_SWEEP_INTERVAL: '200ms' } })
  let failed
  try {
    failed = await stream.next('failed', 20_000)
  } finally {
    await strict.close()
  }
  t.match(failed.data.error, /Timed out: no word from the AI server for 3 s/)
  t.equal((await jobRow(res.body.id)).status, 'FAILED')
  const message = await eventually(() => stack.taskResults.find((m) => m.job_id === res.body.id))
  t.equal(message.status, 'failed')

  await t.test('POST /jobs/:id/retry starts it again on a fresh channel', async (t) => {
    await stack.scenario(pn, {})
    const channelBefore = (await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [res.body.id])).rows[0].channel
    const retried = await stack.api('POST', `/jobs/${res.body.id}/retry`, { token })
    t.equal(retried.status, 202)
    t.equal(retried.body.attempt, 2)
    const channelAfter = (await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [res.body.id])).rows[0].channel
    t.not(channelAfter, channelBefore)
    await eventually(async () => ['DONE', 'FAILED'].includes((await jobRow(res.body.id)).status), 60_000)
    t.match(await jobRow(res.body.id), { status: 'DONE', error: null }, 'the retried job finishes')
    const again = await stack.api('POST', `/jobs/${res.body.id}/retry`, { token })
    t.equal(again.status, 409, 'only failed jobs can be retried')
    t.equal(stack.taskResults.filter((m) => m.job_id === res.body.id).length >= 1, true)
  })
})

test('malformed messages, unknown statuses, wrong types and duplicates are ignored; the job still ends right', async (t) => {
  const pn = 'NOISY-SERVER'
  await stack.scenario(pn, {
    steps: 2, stepMs: 20,
    inject: [
      { afterStep: 0, raw: '{not json' },
      { afterStep: 0, message: { status: 'exploding' } },
      { afterStep: 1, message: { status: 'processing', progress: { current: 'one', total: 5 } } },
      { afterStep: 1, message: { status: 'done', result: 'not an object' } },
      { afterStep: 1, raw: 'x'.repeat(1_100_000) },
    ],
  })
  const res = await classify(pn)
  await eventually(async () => ['DONE', 'FAILED'].includes((await jobRow(res.body.id)).status))
  const row = await jobRow(res.body.id)
  t.equal(row.status, 'FAILED', 'a done with an unusable result ends the job as failed, with the reason')
  t.match(row.error, /unusable result/)
  const { rows } = await stack.db.query('SELECT count(*)::int AS n FROM classifications c JOIN jobs j ON j.id = c.job_id WHERE j.id = $1', [res.body.id])
  t.equal(rows[0].n, 0, 'nothing malformed was stored')
})

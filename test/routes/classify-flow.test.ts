import t0 from 'tap'
const { test } = t0
import { startServices, startStack, eventually, type Stack } from '../helpers/stack.js'
import { openEventStream } from '../helpers/sse.js'

const services = await startServices()
const stack: Stack = await startStack(services)
t0.teardown(async () => { await stack.close(); await services.stop() })

test('a part number is classified end to end: 202, live SSE stream, stored result, one task_results message', async (t) => {
  const token = await stack.login()
  // Paced so that the stream is open before the job ends, however loaded the machine.
  await stack.scenario('BC847BLT1G', { stepMs: 300 })
  const started = await stack.api('POST', '/classifications', { token, body: { partnumber: 'bc847blt1g', description: 'NPN transistor' } })
  t.equal(started.status, 202)
  t.equal(started.headers.location, `/jobs/${started.body.id}`)
  t.equal(started.body.partnumber, 'BC847BLT1G', 'part numbers are normalised')
  t.match(started.body.status, /QUEUED|RUNNING/)
  t.match(started.body.events_url, new RegExp(`^/jobs/${started.body.id}/events\\?token=`))

  const stream = await openEventStream(`${stack.url}${started.body.events_url}`)
  t.equal(stream.status, 200)
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  t.equal(stream.headers['cache-control'], 'no-cache, no-transform')
  t.equal(stream.headers['x-accel-buffering'], 'no')
  const snapshot = await stream.next('snapshot')
  t.equal(snapshot.data.id, started.body.id)
  const done = await stream.next('done')
  t.equal(done.data.result.ncm, '85412120')
  t.equal(done.data.result.ncm_formatted, '8541.21.20')
  t.equal(done.data.result.manufacturer.name, 'ONSEMI')
  await stream.ended
  const events = stream.received.events
  // What the AI said before the stream opened is in the snapshot's progress, what it said after
  // comes as `progress` events (on a busy machine the stream may open after the last one).
  const progress = events.filter((e) => e.event === 'progress')
  const lastSeen = progress.at(-1)?.data ?? snapshot.data.progress
  t.ok(lastSeen?.current >= 1 && lastSeen.current <= lastSeen.total, `the user saw the AI's progress (${progress.length} progress events after the snapshot)`)
  const ids = events.map((e) => Number(e.id))
  t.same(ids, [...ids].sort((a, b) => a - b), 'event ids grow')
  t.ok(stream.received.retries.length >= 1, 'a retry hint is sent')

  const job = await stack.api('GET', `/jobs/${started.body.id}`, { token })
  t.equal(job.body.status, 'DONE')
  t.equal(job.body.result.ncm, '85412120')
  t.equal(job.body.result.status, 'ACTIVE')
  t.equal(job.body.result.manufacturer.country, 'CHINA, REPUBLICA POPULAR')
  t.equal(job.body.result.confidence, 0.95)

  const messages = await eventually(() => {
    const mine = stack.taskResults.filter((m) => m.job_id === started.body.id)
    return mine.length ? mine : undefined
  })
  t.equal(messages.length, 1)
  t.equal(messages[0]!.status, 'done')
  t.equal(messages[0]!.result.ncm, '85412120')
  const { rows } = await stack.db.query('SELECT type, final FROM job_events WHERE job_id = $1 ORDER BY id', [started.body.id])
  t.equal(rows.filter((r) => r.final).length, 1, 'exactly one final audit event')
  t.ok(rows.some((r) => r.type === 'progress'))
})

test('a classified part number is answered from history without calling the AI server', async (t) => {
  const token = await stack.login()
  const before = (await stack.simulatorRequests()).length
  const started = await stack.api('POST', '/classifications', { token, body: { partnumber: 'BC847BLT1G' } })
  t.equal(started.status, 202)
  t.equal(started.body.status, 'DONE')
  t.equal(started.body.source, 'HISTORY')
  t.equal(started.body.result.ncm, '85412120')
  const stream = await openEventStream(`${stack.url}${started.body.events_url}`)
  const events = await stream.rest()
  t.same(events.map((e) => e.event), ['snapshot', 'done'])
  t.equal((await stack.simulatorRequests()).length, before, 'the AI server was not called')
  await eventually(() => stack.taskResults.some((m) => m.job_id === started.body.id))
})

import t0 from 'tap'
import { startServices, startStack, eventually } from '../helpers/stack.js'
import { openEventStream } from '../helpers/sse.js'

const { test } = t0
const services = await startServices()
const stack = await startStack(services, { simulator: { steps: 5, stepMs: 60 } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const alice = await stack.createUser('alice@nexa.test')
const bob = await stack.createUser('bob@nexa.test')

test('another user\'s job is a 404 everywhere, and reveals nothing', async (t) => {
  const job = (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'ALICE-ONLY-1' } })).body
  for (const [method, path] of [['GET', `/jobs/${job.id}`], ['POST', `/jobs/${job.id}/retry`], ['GET', `/jobs/${job.id}/events`]] as const) {
    const res = await stack.api(method, path, { token: bob.token })
    t.equal(res.status, 404, `${method} ${path}`)
    t.equal(res.body.code, 'job_not_found')
    t.notMatch(JSON.stringify(res.body), /ALICE/)
  }
  const listed = await stack.api('GET', '/jobs', { token: bob.token })
  t.notOk(listed.body.items.some((j: any) => j.id === job.id), 'not in bob\'s history')
  const admin = await stack.login()
  t.equal((await stack.api('GET', `/jobs/${job.id}`, { token: admin })).status, 200, 'admins see every job')
})

test('stream authentication: Bearer, cookie, job-scoped token; nothing else', async (t) => {
  const job = (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'AUTH-STREAM-1' } })).body
  const otherJob = (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'AUTH-STREAM-2' } })).body
  const base = `${stack.url}/jobs/${job.id}/events`

  const byBearer = await openEventStream(base, { authorization: `Bearer ${alice.token}` })
  t.equal((await byBearer.next('snapshot')).data.id, job.id, 'Bearer header')
  byBearer.close()
  const byCookie = await openEventStream(base, { cookie: `nexa_session=${alice.token}` })
  t.equal((await byCookie.next('snapshot')).data.id, job.id, 'session cookie')
  byCookie.close()
  const byToken = await openEventStream(`${stack.url}${job.events_url}`)
  t.equal((await byToken.next('snapshot')).data.id, job.id, 'job-scoped token in the URL')
  byToken.close()

  const scopedToOther = new URL(otherJob.events_url, stack.url).searchParams.get('token')
  for (const [why, url, headers] of [
    ['no credentials', base, {}],
    ['a token scoped to another job', `${base}?token=${scopedToOther}`, {}],
    ['an access token in the URL', `${base}?token=${alice.token}`, {}],
    ['a stream token as Bearer', base, { authorization: `Bearer ${scopedToOther}` }],
  ] as const) {
    const res = await stack.api('GET', url.slice(stack.url.length), { headers: headers as Record<string, string> })
    t.equal(res.status, 401, why)
    t.equal(res.headers['content-type']?.startsWith('application/json'), true, `${why}: a JSON error`)
  }
  t.equal((await stack.api('GET', `/jobs/${job.id}/events`, { token: bob.token })).status, 404, 'another user')
})

test('late joiners and reconnects get the snapshot, then the live end', async (t) => {
  const job = (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'LATE-JOINER' } })).body
  const first = await openEventStream(`${stack.url}${job.events_url}`)
  await first.next('snapshot')
  const progress = await first.next('progress')
  first.close()

  // EventSource reconnects with Last-Event-ID; the new stream starts from the database's picture.
  const again = await openEventStream(`${stack.url}${job.events_url}`, { 'last-event-id': progress.id! })
  const snapshot = await again.next('snapshot')
  t.ok(Number(snapshot.id) > Number(progress.id), 'ids keep growing across the reconnect')
  t.ok(snapshot.data.progress.current >= progress.data.current, 'the snapshot is at least as far as what was seen')
  const done = await again.next('done')
  t.equal(done.data.status, 'DONE')
  t.ok(done.data.result.id, 'the final event carries the stored classification')
  await again.ended

  const afterTheEnd = await openEventStream(`${stack.url}${job.events_url}`)
  const events = await afterTheEnd.rest()
  t.same(events.map((e) => e.event), ['snapshot', 'done'], 'a finished job\'s stream ends at once with its final event')
  t.equal(stack.app.hub.counts().listeners, 0, 'no listener is left behind')
})

test('two gateway instances on one database and Redis finish a job once, with one task_results message', async (t) => {
  const second = await startStack(services, { databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl })
  t.teardown(() => second.close())
  const job = (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'TWO-INSTANCES', reclassify: true } })).body
  // Followed through the other instance: its listener and hub see the job too.
  const viaSecond = await openEventStream(`${second.url}${job.events_url}`)
  const done = await viaSecond.next('done')
  t.equal(done.data.status, 'DONE')
  await eventually(() => stack.taskResults.some((m) => m.job_id === job.id))
  await new Promise((r) => setTimeout(r, 300))
  t.equal(stack.taskResults.filter((m) => m.job_id === job.id).length, 1, 'one task_results message')
  const { rows } = await stack.db.query(
    `SELECT (SELECT count(*)::int FROM classifications WHERE job_id = $1) AS results,
            (SELECT count(*)::int FROM job_events WHERE job_id = $1 AND final) AS finals,
            (SELECT count(*)::int FROM job_events WHERE job_id = $1 AND type = 'progress') AS progress`,
    [job.id],
  )
  t.same(rows[0], { results: 1, finals: 1, progress: 6 }, 'one result, one final event, each progress message stored once')
})

test('closing the gateway ends open streams with a retry hint', async (t) => {
  const third = await startStack(services, { databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl })
  await stack.scenario('SLOW-WHILE-CLOSING', { stepMs: 2_000 })
  const job = (await third.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'SLOW-WHILE-CLOSING' } })).body
  const stream = await openEventStream(`${third.url}${job.events_url}`)
  await stream.next('snapshot')
  const before = stream.received.retries.length
  await third.close()
  await stream.ended
  t.ok(stream.received.retries.length > before, 'a retry: hint came before the close')
})

test('the retry: hint on opening is jittered around SSE_RETRY (3 s), so dropped clients come back spread out', async (t) => {
  const job = (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'JITTER-1' } })).body
  const hints: number[] = []
  for (let i = 0; i < 12; i++) {
    const stream = await openEventStream(`${stack.url}${job.events_url}`)
    await stream.next('snapshot')
    hints.push(stream.received.retries[0]!)
    stream.close()
  }
  t.ok(hints.every((ms) => ms >= 1_500 && ms <= 4_500), `between 0.5 and 1.5 × 3000 ms: ${hints.join(', ')}`)
  t.ok(new Set(hints).size > 1, 'not the same value for everyone')
})

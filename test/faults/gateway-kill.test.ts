import t0 from 'tap'
import { openEventStream } from '../helpers/sse.js'
import { aiMessage, ms, waitFor } from './support/fault-stack.js'
import { startProcessStack } from './support/process-stack.js'
import { reliabilitySection } from './reliability-report.js'

// Two gateway processes on one PostgreSQL and Redis; one of them is killed with SIGKILL while the
// job it started runs and a client follows it there.

const { test } = t0
const stack = await startProcessStack()
const report = reliabilitySection({
  id: 'gateway-kill', order: 3, title: 'A gateway process is killed (SIGKILL) mid-job', file: 'test/faults/gateway-kill.test.ts',
  summary: 'Two gateway processes (`node --import tsx src/server.ts`) share PostgreSQL, Redis and the AI simulator; the test kills the one that started the job and that the client watches.',
})
t0.teardown(async () => {
  await report.save()
  await stack.close()
})
const first = await stack.gateway('gateway-1')
const second = await stack.gateway('gateway-2')

test('SIGKILL mid-job: the second instance stores the result once; the client reconnects there and sees the rest', async (t) => {
  const row = report.row(t, 'The instance that started a job and serves its stream is killed with SIGKILL halfway through')
  // The test plays the AI server, so the kill lands mid-job whatever the machine's load.
  const steps = 5
  await stack.scenario('KILLED-MIDWAY', { outcome: 'silent', silentAfter: 1, stepMs: 10 })
  const token = await stack.login(first.url)
  const started = await stack.api(first.url, 'POST', '/classifications', { token, body: { partnumber: 'KILLED-MIDWAY', reclassify: true } })
  t.equal(started.status, 202)
  const job = started.body

  const before = await openEventStream(`${first.url}${job.events_url}`)
  await before.next('snapshot')
  for (const current of [1, 2]) await stack.publish(job.id, aiMessage.processing(current, steps))
  await before.next('progress')
  const lastSeen = await before.next('progress')
  t.equal(lastSeen.data.current, 2)
  const killedAt = performance.now()
  await first.kill()
  await before.ended
  t.notOk(first.running, 'the first instance is gone')
  t.notOk(before.received.events.some((e) => e.event === 'done' || e.event === 'failed'), 'its stream was cut before the end')
  await stack.publish(job.id, aiMessage.processing(3, steps)) // while the client is away

  // EventSource reconnects by itself with Last-Event-ID; behind nginx it lands on the survivor.
  const after = await openEventStream(`${second.url}${job.events_url}`, { 'last-event-id': lastSeen.id! })
  const snapshot = await after.next('snapshot')
  const reconnectMs = performance.now() - killedAt
  t.equal(snapshot.data.status, 'RUNNING', 'the snapshot says the job still runs')
  t.ok(snapshot.data.progress.current >= lastSeen.data.current, 'and is at least as far as what the client saw')
  t.ok(Number(snapshot.id) > Number(lastSeen.id), 'event ids keep growing across the reconnect')
  await stack.publish(job.id, aiMessage.processing(4, steps))
  t.equal((await after.next('progress')).data.current, 4, 'live progress follows')
  await stack.publish(job.id, aiMessage.processing(5, steps))
  await stack.publish(job.id, aiMessage.done('KILLED-MIDWAY'))
  const done = await after.next('done', 20_000)
  t.equal(done.data.status, 'DONE')
  t.ok(done.data.result?.id, 'the end carries the stored result')
  await after.ended

  await waitFor(() => stack.taskResults.some((m) => m.job_id === job.id), 15_000)
  await new Promise((r) => setTimeout(r, 1_000))
  const { rows } = await stack.db.query(
    `SELECT j.status, (SELECT count(*)::int FROM classifications WHERE job_id = j.id) AS results,
            (SELECT count(*)::int FROM job_events WHERE job_id = j.id AND final) AS finals,
            (SELECT count(*)::int FROM job_events WHERE job_id = j.id AND type = 'progress') AS progress
       FROM jobs j WHERE j.id = $1`, [job.id])
  t.same(rows[0], { status: 'DONE', results: 1, finals: 1, progress: steps + 1 }, 'stored once: one result, one final event, every progress message once (0 from the simulator, 1 to 5)')
  t.equal(stack.taskResults.filter((m) => m.job_id === job.id).length, 1, 'one task_results message')

  // The killed instance comes back and finds nothing to redo.
  await first.start()
  const view = await stack.api(first.url, 'GET', `/jobs/${job.id}`, { token })
  t.equal(view.body.status, 'DONE', 'the restarted instance serves the finished job')
  await new Promise((r) => setTimeout(r, 1_000))
  t.equal(stack.taskResults.filter((m) => m.job_id === job.id).length, 1, 'and sends nothing twice')

  row.happened = `The first instance died at progress ${lastSeen.data.current}/${steps}; its stream was cut without an end. The client reconnected to the second instance with Last-Event-ID: `
    + `snapshot RUNNING at ${snapshot.data.progress.current}/${steps} (progress 3 had been published while the client was away; ids kept growing), then live progress and \`done\` with the stored result. `
    + `The second instance, which hears every job, stored ${steps + 1} progress events, 1 final event, 1 classification, and sent 1 \`task_results\`; the restarted first instance added nothing.`
  row.figures = { 'kill to snapshot on the second instance': ms(reconnectMs) }
})

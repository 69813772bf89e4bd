import t0 from 'tap'
import { eventually, startServices, startStack } from '../helpers/stack.js'
import { openEventStream, type EventStreamClient } from '../helpers/sse.js'

// The heartbeat reaches every quiet stream, however many there are (it pings them a slice at a
// time, letting live messages through in between); a stream that carries messages needs none.

const { test } = t0
const STREAMS = 600
const services = await startServices()
const stack = await startStack(services, { env: { SSE_HEARTBEAT_INTERVAL: '300ms', RATE_LIMIT_MAX: '100000', RATE_LIMIT_USER_MAX: '100000' } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const token = await stack.login()

test(`every one of ${STREAMS} open streams gets its heartbeat, and live messages keep flowing`, async (t) => {
  await stack.scenario('HEARTBEAT-1', { outcome: 'silent', silentAfter: 0 })
  const job = (await stack.api('POST', '/classifications', { token, body: { partnumber: 'HEARTBEAT-1' } })).body
  const streams: EventStreamClient[] = []
  for (let i = 0; i < STREAMS; i += 50) {
    streams.push(...await Promise.all(Array.from({ length: 50 }, () => openEventStream(`${stack.url}${job.events_url}`))))
  }
  t.teardown(() => { for (const s of streams) s.close() })
  await Promise.all(streams.map((s) => s.next('snapshot')))
  // Waits for the pings rather than a fixed time: a busy machine delays them, an idle one does not.
  const pingedCount = () => streams.filter((s) => s.received.comments.includes('ping')).length
  await eventually(() => pingedCount() === STREAMS, 30_000).catch(() => undefined)
  t.equal(pingedCount(), STREAMS, 'each stream heard ": ping"')

  const { rows } = await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [job.id])
  const { Redis } = await import('ioredis')
  const publisher = new Redis(services.redis.url)
  t.teardown(() => publisher.quit())
  await publisher.publish(rows[0].channel, JSON.stringify({ status: 'processing', progress: { current: 1, total: 5, message: 'step 1' } }))
  const progress = await Promise.all(streams.map((s) => s.next('progress')))
  t.ok(progress.every((e) => e.data.current === 1), 'a progress message reached every stream')
})

test('a stream carrying live messages gets no heartbeat; a quiet one keeps getting it', async (t) => {
  const jobs = []
  for (const partnumber of ['HEARTBEAT-BUSY', 'HEARTBEAT-QUIET']) {
    await stack.scenario(partnumber, { outcome: 'silent', silentAfter: 0 })
    jobs.push((await stack.api('POST', '/classifications', { token, body: { partnumber } })).body)
  }
  const [busy, quiet] = await Promise.all(jobs.map((job) => openEventStream(`${stack.url}${job.events_url}`)))
  t.teardown(() => { busy!.close(); quiet!.close() })
  await Promise.all([busy!.next('snapshot'), quiet!.next('snapshot')])
  const { rows } = await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [jobs[0].id])
  const { Redis } = await import('ioredis')
  const publisher = new Redis(services.redis.url)
  t.teardown(() => publisher.quit())
  // A progress message every 100 ms for 1.5 s: five heartbeat intervals of 300 ms.
  for (let step = 1; step <= 15; step++) {
    await publisher.publish(rows[0].channel, JSON.stringify({ status: 'processing', progress: { current: step, total: 15, message: `step ${step}` } }))
    await new Promise((r) => setTimeout(r, 100))
  }
  while ((await busy!.next('progress')).data.current !== 15);
  t.equal(busy!.received.comments.filter((c) => c === 'ping').length, 0, 'no ping between live messages')
  t.ok(quiet!.received.comments.filter((c) => c === 'ping').length >= 3, 'the quiet stream was pinged every interval or so')
})

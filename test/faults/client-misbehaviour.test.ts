import t0 from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import { connect } from 'node:net'
import { readdir } from 'node:fs/promises'
import { startServices } from '../helpers/stack.js'
import { aiMessage, mb, metricValue, ms, startFaultStack, waitFor } from './support/fault-stack.js'
import { openLightStream, openManyStreams } from './support/mass-clients.js'
import { reliabilitySection } from './reliability-report.js'

// Clients misbehave against an in-process gateway (so the test can see its hub, its streams and its
// heap): a client that never reads, thousands that vanish without a word, a thousand that all come
// back at once.

const { test } = t0
v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const MAX_BUFFERED = 65_536
const DROPPED = 2_000
const STORM = 1_000
const services = await startServices()
const stack = await startFaultStack(services, { env: { SSE_MAX_BUFFERED_BYTES: String(MAX_BUFFERED), USER_MAX_ACTIVE_JOBS: '1000' } })
const report = reliabilitySection({
  id: 'client-misbehaviour', order: 6, title: 'Clients misbehave', file: 'test/faults/client-misbehaviour.test.ts',
  summary: `Real HTTP clients over loopback against an in-process gateway, whose hub, streams and heap the test inspects (SSE_MAX_BUFFERED_BYTES ${MAX_BUFFERED / 1024} KB).`,
})
t0.teardown(async () => {
  await report.save()
  await stack.close()
  await services.stop()
})
const token = await stack.login()

async function runningJob(partnumber: string) {
  await stack.scenario(partnumber, { outcome: 'silent', silentAfter: 1, stepMs: 10 }) // the test plays the AI server
  let res = await stack.api('POST', '/classifications', { token, body: { partnumber, reclassify: true } })
  // A busy machine may make the gateway shed load (503 and Retry-After): a client tries again then.
  for (let attempt = 1; res.status === 503 && attempt < 10; attempt++) {
    await new Promise((r) => setTimeout(r, 1_000 * Math.min(Number(res.headers['retry-after']) || 1, 5)))
    res = await stack.api('POST', '/classifications', { token, body: { partnumber, reclassify: true } })
  }
  if (res.status !== 202) throw new Error(`${partnumber}: ${res.status} ${JSON.stringify(res.body)}`)
  return { ...res.body, channel: await stack.channelOf(res.body.id) }
}

/** Jobs started one after another: the jobs are the stage, not the load under test. */
async function runningJobs(prefix: string, count: number) {
  const jobs = []
  for (let i = 0; i < count; i++) jobs.push(await runningJob(`${prefix}-${i}`))
  return jobs
}

function settled() {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const resourceCounts = () => {
  const counts: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1
  return counts
}
const openFds = async () => (await readdir('/proc/self/fd')).length

test('a client that never reads is cut loose once its buffer passes the cap; the others carry on', async (t) => {
  const row = report.row(t, 'A client connects to a stream and never reads')
  const job = await runningJob('SLOW-READER')
  const url = new URL(`${stack.url}${job.events_url}`)
  const slow = connect({ host: url.hostname, port: Number(url.port) })
  slow.pause() // never reads: the kernel buffers fill, then the server's
  let slowClosed = false
  slow.on('close', () => { slowClosed = true })
  slow.on('error', () => {})
  slow.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\naccept: text/event-stream\r\n\r\n`)
  const [fast] = await openManyStreams(1, () => url.toString())
  await waitFor(() => stack.app.streams.size === 2 && fast!.events.includes('snapshot'), 10_000)

  const dropsBefore = metricValue(await stack.metrics(), 'nexa_sse_streams_dropped_total')
  const text = 'x'.repeat(2_000)
  let published = 0
  while (stack.app.streams.size === 2 && published < 20_000) {
    await Promise.all(Array.from({ length: 100 }, () => stack.publish(job.channel, JSON.stringify(aiMessage.processing(1, 3, `${text}${published++}`)))))
    await new Promise((r) => setImmediate(r))
  }
  await waitFor(() => stack.app.streams.size === 1, 10_000)
  const publishedBytes = published * 2_100
  t.equal(metricValue(await stack.metrics(), 'nexa_sse_streams_dropped_total') - dropsBefore, 1, 'the slow stream was closed by the server, and counted')
  await waitFor(() => fast!.events.filter((e) => e === 'progress').length === published, 20_000)
  t.ok(!fast!.ended, 'the client that reads is still served, every message')
  t.equal(stack.app.hub.counts().listeners, 1, 'the slow stream\'s listener is gone')
  // What the slow client could still read is what the kernel buffered, not more.
  let inFlight = 0
  slow.on('data', (chunk: Buffer) => { inFlight += chunk.length })
  slow.resume()
  await waitFor(() => slowClosed, 10_000)
  fast!.drop()
  await waitFor(() => stack.app.streams.size === 0, 5_000)
  await stack.app.jobListener.drain() // the thousands of progress messages are all written before the next test

  row.happened = `The server closed the non-reading stream once more than ${MAX_BUFFERED / 1024} KB waited in its own buffer for it (beyond what the kernel holds), counted it in \`nexa_sse_streams_dropped_total\`, `
    + 'and released its hub listener; a reading client on the same job kept receiving every message.'
  row.figures = {
    'messages published until the cut': published,
    'bytes published': mb(publishedBytes),
    'bytes the slow client could still read after (kernel buffers)': mb(inFlight),
    'server-side cap per stream': `${MAX_BUFFERED / 1024} KB`,
  }
})

test(`${DROPPED} clients drop abruptly: no subscription, timer, listener or memory is kept for them`, async (t) => {
  const row = report.row(t, `${DROPPED.toLocaleString('en')} clients with open streams drop abruptly (TCP reset)`)
  const jobs = await runningJobs('DROPPED', 30)
  const urlFor = (i: number) => `${stack.url}${jobs[i % jobs.length].events_url}`
  // Warm up (JIT, pools, caches), so the baseline is the steady state.
  const warm = await openManyStreams(200, urlFor)
  await waitFor(() => stack.app.streams.size === 200, 20_000)
  for (const s of warm) s.drop()
  await waitFor(() => stack.app.streams.size === 0, 10_000)
  await new Promise((r) => setTimeout(r, 500))

  const baseline = { heap: settled(), resources: resourceCounts(), fds: await openFds() }
  const started = performance.now()
  const streams = await openManyStreams(DROPPED, urlFor)
  t.equal(streams.filter((s) => s.status === 200).length, DROPPED, 'all accepted')
  await waitFor(() => streams.every((s) => s.events.includes('snapshot')), 60_000)
  const openMs = performance.now() - started
  t.same(stack.app.hub.counts(), { channels: jobs.length, listeners: DROPPED }, 'the hub holds one listener per stream, one entry per job')
  const watchedWhileOpen = (stack.app as { sessionRevocations?: { size: number } }).sessionRevocations?.size
  t.equal(metricValue(await stack.metrics(), 'nexa_sse_streams_open'), DROPPED)
  const peak = { heap: settled(), fds: await openFds() }
  // A message for every job reaches every stream before they go.
  for (const job of jobs) await stack.publish(job.channel, JSON.stringify(aiMessage.processing(1, 3)))
  await waitFor(() => streams.every((s) => s.events.includes('progress')), 20_000)

  const droppedAt = performance.now()
  for (const s of streams) s.drop()
  await waitFor(() => stack.app.streams.size === 0 && stack.app.hub.counts().listeners === 0, 20_000)
  const releasedMs = performance.now() - droppedAt
  streams.length = 0
  await new Promise((r) => setTimeout(r, 500))
  const after = { heap: settled(), resources: resourceCounts(), fds: await openFds() }

  t.same(stack.app.hub.counts(), { channels: 0, listeners: 0 }, 'the hub is empty again')
  const revocationWatches = () => (stack.app as { sessionRevocations?: { size: number } }).sessionRevocations?.size ?? 0
  t.equal(revocationWatches(), 0, 'no session-revocation watch is left either')
  t.equal(metricValue(await stack.metrics(), 'nexa_sse_streams_open'), 0, 'no stream counted open')
  t.equal(metricValue(await stack.metrics(), 'nexa_progress_hub_listeners'), 0)
  await waitFor(() => stack.app.jobListener.stats().queuedMessages === 0, 10_000)
  t.pass('the listener holds nothing for them')
  // Pools (PostgreSQL, Redis, HTTP keep-alive) open and close a few sockets of their own meanwhile: a
  // leak per client would show as thousands.
  const grew = (kind: string) => (after.resources[kind] ?? 0) - (baseline.resources[kind] ?? 0)
  t.ok(grew('TCPSocketWrap') <= 10, `no socket left behind (${grew('TCPSocketWrap')} more than before)`)
  t.ok(grew('Timeout') <= 5, `no timer left behind (${grew('Timeout')} more than before)`)
  t.ok(after.fds - baseline.fds <= 10, `no file descriptor left behind (${after.fds - baseline.fds} more than before)`)
  const grown = after.heap - baseline.heap
  const perStream = (peak.heap - baseline.heap) / DROPPED
  t.ok(grown < Math.max(4 * 1_048_576, 0.1 * (peak.heap - baseline.heap)), `the heap is back near its baseline (${mb(grown)} above it, peak ${mb(peak.heap - baseline.heap)} above)`)

  row.happened = `All ${DROPPED.toLocaleString('en')} streams (30 jobs) opened, got their snapshot and a live message, then were reset at once. `
    + `Afterwards the hub held 0 channels and 0 listeners, the stream registry 0 streams, \`nexa_sse_streams_open\` 0, the session-revocation watches 0 (${watchedWhileOpen ?? 'n/a'} while open); timers, sockets and file descriptors were back to `
    + `those of before (${grew('Timeout')} timers, ${grew('TCPSocketWrap')} sockets, ${after.fds - baseline.fds} descriptors of difference, from the pools), and the heap was back near its baseline `
    + '(test and gateway share the process, so this covers both ends).'
  row.figures = {
    [`open ${DROPPED} streams`]: ms(openMs),
    'all released after the reset': ms(releasedMs),
    'heap baseline': mb(baseline.heap),
    'heap with the streams open': `${mb(peak.heap)} (~${(perStream / 1024).toFixed(1)} KB per stream, both ends)`,
    'heap after': `${mb(after.heap)} (${grown >= 0 ? '+' : ''}${mb(grown)})`,
    'file descriptors before / open / after': `${baseline.fds} / ${peak.fds} / ${after.fds}`,
  }
})

test(`reconnect storm: ${STORM} clients reconnect at once and all get their snapshot`, async (t) => {
  const row = report.row(t, `Reconnect storm: ${STORM.toLocaleString('en')} clients reconnect at the same moment with Last-Event-ID`)
  const jobs = await runningJobs('STORM', 10)
  for (const job of jobs) await stack.publish(job.channel, JSON.stringify(aiMessage.processing(2, 3)))
  await waitFor(async () => (await stack.db.query(`SELECT count(*)::int AS n FROM jobs WHERE partnumber LIKE 'STORM-%' AND progress_current = 2`)).rows[0].n === jobs.length, 10_000)
  const urlFor = (i: number) => `${stack.url}${jobs[i % jobs.length].events_url}`
  const first = await openManyStreams(STORM, urlFor)
  await waitFor(() => first.every((s) => s.events.includes('snapshot')), 60_000)
  for (const s of first) s.drop()

  // All at once, as after a load balancer drops every connection.
  const started = performance.now()
  const again = await Promise.all(Array.from({ length: STORM }, (_, i) => openLightStream(urlFor(i), { 'last-event-id': '7' })))
  const statuses = new Map<number, number>()
  for (const s of again) statuses.set(s.status, (statuses.get(s.status) ?? 0) + 1)
  t.same(Object.fromEntries(statuses), { 200: STORM }, 'every reconnect was accepted')
  await waitFor(() => again.every((s) => s.events.includes('snapshot')), 60_000)
  const allMs = performance.now() - started
  t.equal(stack.app.streams.size, STORM, 'and is open')
  // They are live: the next message reaches all of them.
  for (const job of jobs) await stack.publish(job.channel, JSON.stringify(aiMessage.processing(3, 3)))
  await waitFor(() => again.every((s) => s.events.includes('progress')), 20_000)
  for (const s of again) s.drop()
  await waitFor(() => stack.app.streams.size === 0 && stack.app.hub.counts().listeners === 0, 20_000)

  row.happened = `All ${STORM.toLocaleString('en')} reconnects were answered 200 with their snapshot (job as stored, progress 2/3), then received the next live message; no 429, no 503.`
  row.figures = { [`${STORM} reconnects, all snapshots sent`]: ms(allMs) }
})

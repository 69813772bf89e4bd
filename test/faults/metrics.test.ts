import t0 from 'tap'
import { randomUUID } from 'node:crypto'
import { request } from 'undici'
import { startServices } from '../helpers/stack.js'
import { openEventStream } from '../helpers/sse.js'
import { aiMessage, metricValue, parseMetrics, startFaultStack, waitFor } from './support/fault-stack.js'
import { reliabilitySection } from './reliability-report.js'

// GET /metrics: what the issue asks to observe is there, moves when the thing happens, and is
// refused without the token.

const { test } = t0
const TOKEN = 'metrics-token-0123456789abcdef'
const services = await startServices()
const stack = await startFaultStack(services, { env: { METRICS_TOKEN: TOKEN } })
const report = reliabilitySection({
  id: 'metrics', order: 7, title: 'Observability: GET /metrics', file: 'test/faults/metrics.test.ts',
  columns: ['What to observe', 'Prometheus series', 'Value after causing it'],
  summary: 'Each item the issue asks to observe, the Prometheus series that shows it, and the value the test saw move after causing it (one job done, one refused start, one bad and one stray message, a Redis and a PostgreSQL restart).',
})
t0.teardown(async () => {
  await report.save()
  await stack.close()
  await services.stop()
})
const token = await stack.login()

test('every item of the list is exported, and moves when it happens', async (t) => {
  // Cause one of everything.
  await stack.scenario('METRICS-DONE', { outcome: 'silent', silentAfter: 1, stepMs: 10 }) // the test plays the rest
  const done = await stack.api('POST', '/classifications', { token, body: { partnumber: 'METRICS-DONE', reclassify: true } })
  const stream = await openEventStream(`${stack.url}${done.body.events_url}`)
  await stream.next('snapshot')
  const openWhileStreaming = metricValue(await stack.metrics(TOKEN), 'nexa_sse_streams_open')
  const channel = await stack.channelOf(done.body.id)
  for (const current of [1, 2]) await stack.publish(channel, JSON.stringify(aiMessage.processing(current, 2)))
  await stack.publish(channel, JSON.stringify(aiMessage.done('METRICS-DONE')))
  await stream.next('done')
  await stack.scenario('METRICS-REFUSED', { start: 'error' })
  await stack.api('POST', '/classifications', { token, body: { partnumber: 'METRICS-REFUSED', reclassify: true } })
  await stack.publish(channel, '{"broken":')
  await stack.publish(`progress-${randomUUID()}`, JSON.stringify(aiMessage.processing(0, 1)))
  await services.redis.handle!.stop()
  await waitFor(async () => (await stack.api('GET', '/ready')).status === 503, 10_000)
  await services.redis.handle!.start()
  await waitFor(async () => (await stack.api('GET', '/ready')).status === 200, 15_000)
  await services.postgres.handle!.stop()
  await stack.api('GET', '/ready')
  await services.postgres.handle!.start()
  await waitFor(async () => (await stack.api('GET', '/ready')).status === 200, 15_000)
  await waitFor(async () => metricValue(await stack.metrics(TOKEN), 'nexa_ai_messages_total', { outcome: 'unmatched' }) === 1, 10_000)

  const res = await request(`${stack.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/, 'Prometheus text format')
  const text = await res.body.text()
  const metrics = parseMetrics(text)
  const value = (name: string, labels: Record<string, string> = {}) => metricValue(metrics, name, labels)
  const help = (name: string) => new RegExp(`^# HELP ${name} `, 'm').test(text)

  const items: Array<[string, string, number, (v: number) => boolean]> = [
    ['jobs started, by kind (and source)', 'nexa_jobs_started_total{kind="SINGLE",source="AI"}', value('nexa_jobs_started_total', { kind: 'SINGLE', source: 'AI' }), (v) => v === 2],
    ['jobs finished, by kind and reason', 'nexa_jobs_finished_total{kind="SINGLE",status="DONE",reason="ai_result"}', value('nexa_jobs_finished_total', { kind: 'SINGLE', status: 'DONE', reason: 'ai_result' }), (v) => v === 1],
    ['jobs failed, by kind and reason', 'nexa_jobs_finished_total{kind="SINGLE",status="FAILED",reason="ai_start"}', value('nexa_jobs_finished_total', { kind: 'SINGLE', status: 'FAILED', reason: 'ai_start' }), (v) => v === 1],
    ['AI server call latency', 'nexa_ai_request_duration_seconds_count{endpoint="single"}', value('nexa_ai_request_duration_seconds_count', { endpoint: 'single' }), (v) => v === 2],
    ['AI server call errors', 'nexa_ai_request_errors_total{endpoint="single",error="status_5xx"}', value('nexa_ai_request_errors_total', { endpoint: 'single', error: 'status_5xx' }), (v) => v === 1],
    ['open event streams', 'nexa_sse_streams_open (while one was open)', openWhileStreaming, (v) => v === 1],
    ['messages received', 'nexa_ai_messages_received_total', value('nexa_ai_messages_received_total'), (v) => v >= 6],
    ['messages invalid', 'nexa_ai_messages_total{outcome="invalid"}', value('nexa_ai_messages_total', { outcome: 'invalid' }), (v) => v === 1],
    ['messages unmatched', 'nexa_ai_messages_total{outcome="unmatched"}', value('nexa_ai_messages_total', { outcome: 'unmatched' }), (v) => v === 1],
    ['time from a message\'s arrival to its write', 'nexa_ai_message_write_seconds_count', value('nexa_ai_message_write_seconds_count'), (v) => v >= 4],
    ['Redis reconnects', 'nexa_reconnects_total{service="redis"}', value('nexa_reconnects_total', { service: 'redis' }), (v) => v === 1],
    ['PostgreSQL reconnects', 'nexa_reconnects_total{service="postgres"}', value('nexa_reconnects_total', { service: 'postgres' }), (v) => v >= 1],
  ]
  for (const [item, series, seen, ok] of items) {
    await t.test(item, async (t) => {
      const row = report.row(t, item)
      t.ok(help(series.split(/[{ ]/)[0]!.replace(/_count$/, '')), `${series}: exported with its HELP`)
      t.ok(ok(seen), `${series} moved as expected (saw ${seen})`)
      row.happened = `\`${series}\``
      row.figures = { seen }
    })
  }
  t.ok(value('nexa_ai_message_write_seconds_sum') > 0, 'the write time has a sum')
  t.ok(help('nexa_sse_streams_dropped_total') && help('nexa_progress_hub_listeners') && help('nexa_job_listener_queued_messages') && help('nexa_database_unavailable_total'), 'and the helpers of diagnosis')
})

test('protected: without the token, /metrics does not exist', async (t) => {
  const row = report.row(t, 'Protection: GET /metrics without, or with a wrong, METRICS_TOKEN')
  for (const headers of [{}, { authorization: 'Bearer wrong-token-0123456789abcdef' }, { authorization: TOKEN }]) {
    const res = await request(`${stack.url}/metrics`, { headers })
    t.equal(res.statusCode, 404, JSON.stringify(headers))
    t.notMatch(await res.body.text(), /nexa_/, 'and shows nothing')
  }
  const disabled = await startFaultStack(services, { env: { METRICS_ENABLED: 'false' }, simulatorUrl: stack.simulatorUrl })
  t.teardown(() => disabled.close())
  t.equal((await request(`${disabled.url}/metrics`)).statusCode, 404, 'METRICS_ENABLED=false removes it')
  row.happened = 'No token, a wrong token, or the token without `Bearer`: 404 (the endpoint is not advertised), nothing shown; with `METRICS_ENABLED=false` the route does not exist. '
    + 'Binding /metrics to a separate internal address is not configurable yet (it needs a setting in src/config.ts).'
})

import t0 from 'tap'
import type pg from 'pg'
import { startServices, startStack } from '../helpers/stack.js'
import { openEventStream } from '../helpers/sse.js'

// Every pool connection busy (overload) is not an outage: requests that cannot get a connection
// within the timeout answer 503 `database_busy` with a short Retry-After, and /ready stays ready.

const { test } = t0
const services = await startServices()
// 3 s: the pool's connection timeout follows it (at most 3 s), and on a busy machine opening a new
// connection alone can take more than 1 s (the gateway then failed to start).
const stack = await startStack(services, { env: { DATABASE_POOL_MAX: '2', DATABASE_QUERY_TIMEOUT: '3s' } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const token = await stack.login()
const job = await stack.api('POST', '/classifications', { token, body: { partnumber: 'BUSY-POOL-1' } })

/** Takes every connection of the gateway's pool until the test releases them. */
async function holdEveryConnection(): Promise<() => void> {
  const held: pg.PoolClient[] = []
  for (let i = 0; i < 2; i++) held.push(await stack.app.pg.pool.connect())
  return () => { for (const client of held) client.release() }
}

test('a busy pool answers 503 database_busy, keeps /ready ready, and recovers at once', async (t) => {
  const release = await holdEveryConnection()
  // Every connection stays held until release(): an answer that comes at all (within the 20 s a
  // client waits) was not waiting for a connection, however slow the machine.
  const busy = await stack.api('GET', `/jobs/${job.body.id}`, { token, timeoutMs: 20_000 })
  t.equal(busy.status, 503, `answered while every connection is held (${Math.round(busy.ms)} ms)`)
  t.equal(busy.body.code, 'database_busy')
  t.equal(busy.headers['retry-after'], '1')

  const stream = await openEventStream(`${stack.url}${job.body.events_url}`)
  t.equal(stream.status, 200, 'an event stream still gets 200, so that EventSource comes back by itself')
  t.same(await stream.rest(), [], 'no event: the stream ends at once')
  t.ok(stream.received.retries.length > 0, 'with a retry hint')

  const ready = await stack.api('GET', '/ready')
  t.equal(ready.status, 200, '/ready: a busy database is a reachable one')
  t.equal(ready.body.database, 'ok')
  t.equal(stack.app.database.available, true, 'no outage recorded')

  release()
  t.equal((await stack.api('GET', `/jobs/${job.body.id}`, { token })).status, 200, 'served again once connections are free')
  const metrics = await stack.app.metrics.registry.getSingleMetricAsString('nexa_database_busy_total')
  t.match(metrics, /nexa_database_busy_total 2/, 'counted: the request and the stream')
})

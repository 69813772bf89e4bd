// Real nginx (Debian's package) running deploy/nginx.conf in front of two real gateway processes
// that share one PostgreSQL and one Redis. Everything below goes through nginx over TLS (HTTP/2, as
// browsers use it), except where a check needs to know what one instance did.
import t0 from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, setGlobalDispatcher } from 'undici'
import { openEventStream, type EventStreamClient } from '../helpers/sse.js'
import { eventually } from '../helpers/stack.js'
import { servedRequest, type GatewayProcess } from '../helpers/gateway-process.js'
import { ai, call, login, startClientStack } from './support/client-stack.js'
import { startNginx } from './support/nginx.js'
import { purchaseOrderPdf } from './support/po-pdf.js'

const { test } = t0
const run = promisify(execFile)

const RATE_LIMIT_MAX = 100
const HEARTBEAT_STREAM_MS = 120_000
const stack = await startClientStack({
  instances: 2,
  // TRUST_PROXY=1: only nginx reaches the gateways, so the last X-Forwarded-For entry (the one nginx
  // adds) is the client's address.
  // The per-user limit is set out of the way: this file checks the per-address one.
  env: { TRUST_PROXY: '1', RATE_LIMIT_MAX: String(RATE_LIMIT_MAX), RATE_LIMIT_WINDOW: '10m', RATE_LIMIT_USER_MAX: '100000' },
})
const [gatewayA, gatewayB] = stack.gateways as [GatewayProcess, GatewayProcess]
const nginx = await startNginx({ upstreams: [gatewayA.port, gatewayB.port] })
t0.teardown(async () => { await nginx.stop(); await stack.close() })

// Clients trust the test certificate and speak HTTP/2 when nginx offers it (it does, over TLS).
const clientAgent = (localAddress?: string) => new Agent({ allowH2: true, localAddress, connect: { ca: nginx.certificate } })
setGlobalDispatcher(clientAgent())
const NGINX = nginx.httpsUrl
const token = await login(NGINX)

/** Which gateway process served the request with this x-request-id. */
async function instanceThatServed(requestId: string): Promise<GatewayProcess> {
  return eventually(() => [gatewayA, gatewayB].find((g) => servedRequest(g, requestId)), 5_000)
}

// ---------------------------------------------------------------------------------------------
// Started first and checked last: a stream that hears nothing but heartbeats for two minutes,
// while the other checks run.
const quietJob = await (async () => {
  await stack.scenario('NGINX-QUIET', { outcome: 'silent', silentAfter: 0 })
  const job = (await call(NGINX, 'POST', '/classifications', { token, body: { partnumber: 'NGINX-QUIET' } })).body
  // As a cross-origin browser would: the job-scoped token in the URL, no header.
  const stream = await openEventStream(`${NGINX}${job.events_url}`)
  return { job, stream, openedAt: Date.now() }
})()

test('each event reaches the client through nginx before the next one is published', async (t) => {
  await stack.scenario('NGINX-LOCKSTEP', { outcome: 'silent', silentAfter: 0 })
  const job = (await call(NGINX, 'POST', '/classifications', { token, body: { partnumber: 'NGINX-LOCKSTEP' } })).body
  const stream = await openEventStream(`${NGINX}/jobs/${job.id}/events`, { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip, br' })
  t.equal(stream.status, 200)
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  t.notOk(stream.headers['content-encoding'], 'not compressed, although the client accepts gzip')
  await stream.next('snapshot')

  // The test plays the AI server: the next message is published only once the previous one has
  // come out of nginx. A buffering proxy would hold them and this loop would time out.
  const gaps: number[] = []
  const total = 6
  for (let current = 1; current <= total; current++) {
    const publishedAt = performance.now()
    await stack.publish(job.id, ai.processing(current, total, `etapa ${current}`))
    const event = await stream.next('progress', 15_000)
    gaps.push(Math.round((performance.now() - publishedAt) * 10) / 10)
    t.equal(event.data.current, current, `progress ${current} arrived before ${current + 1} was published`)
  }
  const publishedAt = performance.now()
  await stack.publish(job.id, ai.done(ai.result('NGINX-LOCKSTEP', { ncm: '85423190' })))
  const done = await stream.next('done', 15_000)
  gaps.push(Math.round((performance.now() - publishedAt) * 10) / 10)
  t.equal(done.data.result.ncm_formatted, '8542.31.90')
  await stream.ended
  t.comment(`publish -> arrival through nginx, ms: ${gaps.join(', ')}`)
})

test('a job started through one instance and followed through the other: one result, one task_results message', async (t) => {
  await stack.scenario('NGINX-CROSS', { steps: 8, stepMs: 400 })
  const startId = `cross-start-${Date.now()}`
  const job = (await call(NGINX, 'POST', '/classifications', { token, body: { partnumber: 'NGINX-CROSS' }, headers: { 'x-request-id': startId } })).body
  const starter = await instanceThatServed(startId)

  // nginx picks the instance (least_conn): open streams until one lands on the other instance.
  // Those that land on the starter stay open meanwhile, which steers nginx to the other one.
  const misses: EventStreamClient[] = []
  t.teardown(() => misses.forEach((s) => s.close()))
  let stream: EventStreamClient | undefined
  let follower: GatewayProcess | undefined
  for (let attempt = 0; attempt < 10 && !follower; attempt++) {
    const followId = `cross-follow-${attempt}-${Date.now()}`
    const candidate = await openEventStream(`${NGINX}/jobs/${job.id}/events`, { authorization: `Bearer ${token}`, 'x-request-id': followId })
    const served = await instanceThatServed(followId)
    if (served !== starter) { stream = candidate; follower = served } else misses.push(candidate)
  }
  t.ok(stream && follower, `started on ${starter.name}, followed on ${follower?.name}`)
  const events = [await stream!.next('snapshot'), ...(await stream!.rest(20_000))]
  const done = events.at(-1)!
  t.equal(done.event, 'done')
  t.ok(events.some((e) => e.event === 'progress'), 'progress came through the other instance')

  await eventually(() => stack.taskResults.some((m) => m.job_id === job.id), 10_000)
  await new Promise((r) => setTimeout(r, 1_000)) // room for a duplicate to show up
  t.equal(stack.taskResults.filter((m) => m.job_id === job.id).length, 1, 'one task_results message')
  const { rows } = await stack.db.query('SELECT count(*)::int AS n FROM classifications WHERE job_id = $1', [job.id])
  t.equal(rows[0].n, 1, 'one stored result')
  t.equal(done.data.result.id, (await call(NGINX, 'GET', `/jobs/${job.id}`, { token })).body.result.id, 'the streamed result is the stored one')
})

test('uploads with curl: a 20 MB purchase order passes, a larger body is refused with a clear error', async (t) => {
  const lines = [
    { partnumber: 'BC847BLT1G', description: 'Transistor NPN SOT-23', quantity: 100 },
    { partnumber: 'LM358DR', description: 'Amplificador operacional duplo', quantity: 25 },
  ]
  const dir = await mkdtemp(join(tmpdir(), 'nexa-upload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // As the README shows it: curl -F, here over HTTP/2 through nginx.
  const upload = async (name: string, sizeBytes: number) => {
    const file = join(dir, name)
    await writeFile(file, await purchaseOrderPdf(lines, { sizeBytes }))
    const { stdout } = await run('curl', [
      '-sS', '--http2', '--cacert', nginx.certificateFile, '-H', `authorization: Bearer ${token}`,
      '-F', `file=@${file};type=application/pdf`, '-w', '\n%{http_code}|%{content_type}|%{size_upload}', `${NGINX}/documents`,
    ], { maxBuffer: 1 << 20 })
    const [body, meta] = [stdout.slice(0, stdout.lastIndexOf('\n')), stdout.slice(stdout.lastIndexOf('\n') + 1)]
    const [status, contentType, uploaded] = meta.split('|')
    return { status: Number(status), contentType, uploaded: Number(uploaded), body: JSON.parse(body) }
  }

  const limit = 20 * 1024 * 1024
  const atLimit = await upload('pedido-20mb.pdf', limit)
  t.equal(atLimit.status, 201, `a PDF of exactly ${limit} bytes is accepted`)
  t.same(atLimit.body.part_numbers?.map((p: { partnumber: string }) => p.partnumber), ['BC847BLT1G', 'LM358DR'], 'and read')
  t.equal(atLimit.body.size_bytes, limit)

  // Past the gateway's limit but within nginx's allowance for the multipart envelope: the gateway refuses it.
  const overGateway = await upload('pedido-20mb-plus.pdf', limit + 64 * 1024)
  t.equal(overGateway.status, 413, '20 MB + 64 KB: refused by the gateway')
  t.equal(overGateway.body.code, 'document_too_large')

  // Far past it: nginx refuses it from its Content-Length, without reading or forwarding it.
  const huge = await upload('pedido-25mb.pdf', 25 * 1024 * 1024)
  t.equal(huge.status, 413, '25 MB: refused by nginx')
  t.match(huge.contentType, /^application\/json/)
  t.match(huge.body, { statusCode: 413, code: 'payload_too_large', message: /20 MB/ })
  t.comment(`20 MB (${atLimit.uploaded} bytes sent): ${atLimit.status}, ${atLimit.body.total} part numbers; 20 MB + 64 KB: ${overGateway.status} ${overGateway.body.code}; 25 MB: ${huge.status} ${huge.body.code}`)
})

test('the rate limit and the logs see the real client address, not nginx\'s', async (t) => {
  // Two clients on other loopback addresses: nginx sees 127.0.0.2 and 127.0.0.3, the gateways only
  // ever see nginx (127.0.0.1) on the socket.
  const [second, third] = [clientAgent('127.0.0.2'), clientAgent('127.0.0.3')]
  t.teardown(async () => { await second.close(); await third.close() })
  const ids: string[] = []
  const statuses: number[] = []
  for (let i = 0; i < RATE_LIMIT_MAX; i += 10) {
    const batch = await Promise.all(Array.from({ length: Math.min(10, RATE_LIMIT_MAX - i) }, (_, k) => {
      const id = `rl-${i + k}-${Date.now()}`
      ids.push(id)
      // A forged X-Forwarded-For changes nothing: nginx appends the real address, which is the one trusted.
      return call(NGINX, 'GET', '/auth/me', { token, dispatcher: second, headers: { 'x-request-id': id, 'x-forwarded-for': `203.0.113.${i + k}` } })
    }))
    statuses.push(...batch.map((r) => r.status))
  }
  t.ok(statuses.every((s) => s === 200), `${RATE_LIMIT_MAX} requests from 127.0.0.2 answered`)
  const limited = await call(NGINX, 'GET', '/auth/me', { token, dispatcher: second })
  t.equal(limited.status, 429, `request ${RATE_LIMIT_MAX + 1} from 127.0.0.2 is refused, counted over both instances`)
  t.match(limited.body, { statusCode: 429, error: 'Too Many Requests', code: 'too_many_requests' })
  const other = await call(NGINX, 'GET', '/auth/me', { token, dispatcher: third })
  t.equal(other.status, 200, 'another client (127.0.0.3) behind the same nginx is not limited')
  t.equal(Number(other.headers['x-ratelimit-remaining']), RATE_LIMIT_MAX - 1, 'and has its own count')

  const logged = [...gatewayA.logs, ...gatewayB.logs].filter((l) => ids.includes(l.reqId) && l.req)
  t.ok(logged.length >= RATE_LIMIT_MAX, 'the gateways logged the requests')
  t.ok(logged.every((l) => l.req.remoteAddress === '127.0.0.2'), 'with the client\'s address, not nginx\'s and not the forged one')
  t.ok(new Set(logged.map((l) => l.hostname + l.pid)).size === 2, 'on both instances')
  const access = await nginx.accessLog()
  t.match(access, /^127\.0\.0\.2 - .*"GET \/auth\/me HTTP\/2\.0" 429/m, 'nginx logs the client address too')
})

test('HTTP/2 on the public side, plain HTTP redirected', async (t) => {
  const { stdout } = await run('curl', ['-sS', '--http2', '--cacert', nginx.certificateFile, '-o', '/dev/null', '-w', '%{http_version}', `${NGINX}/health`])
  t.equal(stdout, '2', 'curl negotiates HTTP/2 with nginx')
  // HTTPS is on another port than 443 here, as when NGINX_HTTPS_PORT moves it: the redirect keeps it.
  const redirect = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `${nginx.httpUrl}/jobs?limit=1`])
  t.equal(redirect.stdout, `301 ${NGINX}/jobs?limit=1`, 'http:// answers a redirect to https:// on the HTTPS port')
  const followed = await run('curl', ['-sS', '-L', '--cacert', nginx.certificateFile, '-o', '/dev/null', '-w', '%{http_code} %{url_effective}', `${nginx.httpUrl}/health`])
  t.equal(followed.stdout, `200 ${NGINX}/health`, 'and following it reaches the gateway over HTTPS')
})

test('a stream open for 2 minutes with only heartbeats stays open, and still delivers', async (t) => {
  const { job, stream, openedAt } = quietJob
  await stream.next('snapshot')
  const left = HEARTBEAT_STREAM_MS - (Date.now() - openedAt)
  if (left > 0) await new Promise((r) => setTimeout(r, left))
  const pings = stream.received.comments.filter((c) => c === 'ping').length
  const ended = await Promise.race([stream.ended.then(() => true), new Promise((r) => setTimeout(() => r(false), 50))])
  t.notOk(ended, `still open after ${Math.round((Date.now() - openedAt) / 1000)} s`)
  t.ok(pings >= 7, `${pings} heartbeats (every 15 s)`)
  const told = stream.received.events.map((e) => e.event)
  t.same([...new Set(told)], ['snapshot', 'waiting'], 'no event but the snapshot and, with the heartbeats, how long the job has been quiet')
  const quiet = stream.received.events.filter((e) => e.event === 'waiting').map((e) => e.data.quiet_seconds)
  t.ok(quiet.every((s, i) => i === 0 || s > quiet[i - 1]!), `the quiet time grows: ${quiet.join(', ')} s`)

  await stack.publish(job.id, ai.processing(1, 2, 'ainda aqui'))
  t.equal((await stream.next('progress', 15_000)).data.message, 'ainda aqui', 'a progress event after two quiet minutes arrives')
  await stack.publish(job.id, ai.done(ai.result('NGINX-QUIET')))
  t.equal((await stream.next('done', 15_000)).data.status, 'DONE')
  await stream.ended
  t.comment(`heartbeat-only stream: ${pings} pings over ${Math.round((Date.now() - openedAt) / 1000)} s`)

  const access = await nginx.accessLog()
  t.match(access, new RegExp(`"GET /jobs/${job.id}/events HTTP/2\\.0" 200`), 'the stream is in the access log')
  t.notMatch(access, /token=/, 'without the stream token: nginx logs no query strings')
})

test('with no gateway reachable, nginx answers 503 in the API\'s JSON shape', async (t) => {
  // Last: both instances go away.
  await Promise.all([gatewayA.stop(), gatewayB.stop()])
  const res = await call(NGINX, 'GET', '/jobs', { token })
  t.equal(res.status, 503)
  t.equal(res.headers['retry-after'], '5')
  t.match(res.body, { statusCode: 503, error: 'Service Unavailable', code: 'gateway_unavailable' })
})

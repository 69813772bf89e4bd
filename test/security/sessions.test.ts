import t0 from 'tap'
import { Redis } from 'ioredis'
import { startServices, startStack, eventually, ADMIN, type Stack } from '../helpers/stack.js'
import { openEventStream, type EventStreamClient } from '../helpers/sse.js'
import { SessionStreams, parseNotice, SESSIONS_REVOKED_CHANNEL } from '../../src/services/auth/session-revocations.js'
import { NO_LOGIN_LIMITS, claimsOf, nowSeconds, settlesWithin, signIn, signJwt, streamTokenOf } from './support.js'

// OWASP API2 (broken authentication), beyond what test/routes/auth*.test.ts already show (algorithm
// pinning, required expiry, refresh rotation and reuse, logout, same answer for unknown email and
// wrong password, login throttling): token lifetimes, job-scoped stream tokens, open event streams
// closed the moment their session ends (on this instance and on others), the periodic re-check
// behind it, and sign-in answers that cost the same time whatever is wrong.

const { test } = t0
const services = await startServices()
const METRICS_TOKEN = 'metrics-token-0123456789abcdef'
// No periodic re-check during this file (1 h) except where a test asks for one: a stream closed
// within a second or two was closed by the revocation notice.
const env = { ...NO_LOGIN_LIMITS, METRICS_TOKEN, SESSION_RECHECK_INTERVAL: '1h' }
const stack: Stack = await startStack(services, { env, simulator: { steps: 2, stepMs: 5 } })
const other: Stack = await startStack(services, { env, databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl })
const publisher = new Redis(services.redis.url)
t0.teardown(async () => { publisher.disconnect(); await other.close(); await stack.close(); await services.stop() })

const PASSWORD = 'session-user-password'
const adminToken = await stack.login()
let holds = 0

async function newUser(name: string, role: 'USER' | 'ADMIN' = 'USER') {
  const email = `${name}@nexa.test`
  // Created, not signed in (each sign-in costs a real scrypt): the tests sign in as they need.
  const res = await stack.api('POST', '/users', { token: adminToken, body: { email, password: PASSWORD, role } })
  if (res.status !== 201) throw new Error(`user not created: ${res.status} ${JSON.stringify(res.body)}`)
  return { id: res.body.id as string, email }
}

/** A job that stays RUNNING (the AI server goes silent), so its streams stay open. */
async function runningJob(token: string) {
  const partnumber = `HOLD-${++holds}`
  await stack.scenario(partnumber, { outcome: 'silent', silentAfter: 0 })
  const res = await stack.api('POST', '/classifications', { token, body: { partnumber } })
  if (res.status !== 202) throw new Error(`job not started: ${res.status} ${JSON.stringify(res.body)}`)
  const channel: string = (await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [res.body.id])).rows[0].channel
  return { ...res.body, channel } as { id: string; events_url: string; channel: string }
}

async function opened(url: string, headers: Record<string, string> = {}): Promise<EventStreamClient> {
  const stream = await openEventStream(url, headers)
  if (stream.status !== 200) throw new Error(`stream refused: ${stream.status} ${JSON.stringify(stream.received.events)}`)
  await stream.next('snapshot')
  return stream
}

const closesSoon = (stream: EventStreamClient, ms = 3_000) => settlesWithin(stream.ended, ms)
const staysOpen = async (stream: EventStreamClient, ms = 400) => !(await settlesWithin(stream.ended, ms))

/** A progress message on the job's channel reaches a stream that is still open. */
async function stillDelivers(stream: EventStreamClient, job: { id: string; channel: string }, current: number) {
  await publisher.publish(job.channel, JSON.stringify({ job_id: job.id, status: 'processing', progress: { current, total: 9, message: `still here ${current}` } }))
  return (await stream.next('progress', 5_000)).data.message === `still here ${current}`
}

test('access tokens last ACCESS_TOKEN_TTL (15 min), stream tokens STREAM_TOKEN_TTL (5 min) and one job', async (t) => {
  const user = await newUser('lifetimes')
  const tokens = await signIn(stack, user.email, PASSWORD)
  const header = JSON.parse(Buffer.from(tokens.access_token.split('.')[0]!, 'base64url').toString())
  t.same(header, { alg: 'HS256', typ: 'JWT' }, 'HS256')
  const access = claimsOf(tokens.access_token)
  t.equal(access.exp - access.iat, 900, 'the access token expires 15 minutes after issue')
  const job = await runningJob(tokens.access_token)
  const stream = claimsOf(streamTokenOf(job.events_url))
  t.match(stream, { sub: user.id, sid: access.sid, typ: 'stream', job: job.id })
  t.equal(stream.exp - stream.iat, 300, 'the stream token expires 5 minutes after issue')
})

test('a stream token opens its job\'s stream while valid, and nothing else', async (t) => {
  const user = await newUser('stream-token')
  const tokens = await signIn(stack, user.email, PASSWORD)
  const job = await runningJob(tokens.access_token)
  const token = streamTokenOf(job.events_url)
  const secret = stack.app.config.auth.jwtSecret
  const claims = claimsOf(token)

  const ok = await opened(`${stack.url}/jobs/${job.id}/events?token=${token}`)
  ok.close()
  const refusals: Array<[string, string]> = [
    ['expired a second ago', signJwt({ ...claims, iat: nowSeconds() - 301, exp: nowSeconds() - 1 }, secret)],
    ['no expiry', signJwt({ sub: claims.sub, sid: claims.sid, typ: 'stream', job: job.id, iat: nowSeconds() }, secret)],
    ['no job claim', signJwt({ ...claims, job: undefined }, secret)],
    ['job claim changed without the secret', `${token.split('.')[0]}.${Buffer.from(JSON.stringify({ ...claims, job: job.id.replace(/.$/, (last) => (last === '0' ? '1' : '0')) })).toString('base64url')}.${token.split('.')[2]}`],
    ['an access token as stream token', tokens.access_token],
  ]
  for (const [why, forged] of refusals) {
    const res = await stack.api('GET', `/jobs/${job.id}/events?token=${forged}`)
    t.equal(res.status, 401, why)
  }
  for (const path of [`/jobs/${job.id}`, `/jobs/${job.id}/results.json`, '/jobs', `/jobs/${job.id}/retry`]) {
    const res = await stack.api(path.endsWith('retry') ? 'POST' : 'GET', path, { token })
    t.equal(res.status, 401, `${path}: a stream token is no access token`)
    t.equal((await stack.api('GET', `${path}?token=${token}`)).status === 200, false, `${path}?token=: not accepted in the URL either`)
  }
  await stack.api('POST', '/auth/logout', { token: tokens.access_token })
  t.equal((await stack.api('GET', `/jobs/${job.id}/events?token=${token}`)).status, 401, 'a stream token of an ended session is refused')
})

test('logout closes every open stream of that session at once (Bearer, cookie, stream token); other sessions\' streams go on', async (t) => {
  const user = await newUser('logout-streams')
  const session = await signIn(stack, user.email, PASSWORD)
  const second = await signIn(stack, user.email, PASSWORD)
  const job = await runningJob(session.access_token)
  const url = `${stack.url}/jobs/${job.id}/events`
  const streams = {
    bearer: await opened(url, { authorization: `Bearer ${session.access_token}` }),
    cookie: await opened(url, { cookie: `nexa_session=${session.access_token}` }),
    'stream token': await opened(`${stack.url}${job.events_url}`),
    'stream token, other instance': await opened(`${other.url}${job.events_url}`),
  }
  const otherSession = await opened(url, { authorization: `Bearer ${second.access_token}` })
  const adminStream = await opened(url, { authorization: `Bearer ${adminToken}` })
  t.ok(stack.app.sessionRevocations.size >= 5, 'the streams are watched')

  const started = Date.now()
  t.equal((await stack.api('POST', '/auth/logout', { token: session.access_token })).status, 204)
  for (const [how, stream] of Object.entries(streams)) t.ok(await closesSoon(stream), `${how}: closed`)
  t.comment(`closed ${Date.now() - started} ms after the logout`)
  t.ok(await staysOpen(otherSession), 'the user\'s other session keeps its stream')
  t.ok(await stillDelivers(otherSession, job, 1), 'which still delivers')
  t.ok(await staysOpen(adminStream, 50), 'an admin watching the same job keeps theirs')

  const again = await stack.api('GET', `/jobs/${job.id}/events`, { token: session.access_token })
  t.equal(again.status, 401, 'reconnecting (as EventSource does) is refused')
  otherSession.close()
  adminStream.close()
  await eventually(() => stack.app.sessionRevocations.size === 0 && other.app.sessionRevocations.size === 0, 3_000)
  t.pass('closed streams are no longer watched')
})

test('disabling a user closes the streams of all their sessions, on every instance', async (t) => {
  const user = await newUser('disabled-streams')
  const [a, b] = [await signIn(stack, user.email, PASSWORD), await signIn(stack, user.email, PASSWORD)]
  const job = await runningJob(a.access_token)
  const streams = [
    await opened(`${stack.url}/jobs/${job.id}/events`, { authorization: `Bearer ${a.access_token}` }),
    await opened(`${other.url}/jobs/${job.id}/events`, { authorization: `Bearer ${b.access_token}` }),
    await opened(`${other.url}${job.events_url}`),
  ]
  const adminStream = await opened(`${other.url}/jobs/${job.id}/events`, { authorization: `Bearer ${adminToken}` })
  t.equal((await stack.api('PATCH', `/users/${user.id}`, { token: adminToken, body: { disabled: true } })).status, 200)
  for (const [i, stream] of streams.entries()) t.ok(await closesSoon(stream), `stream ${i + 1} closed`)
  t.ok(await staysOpen(adminStream), 'the admin\'s stream of the same job goes on')
  t.ok(await stillDelivers(adminStream, job, 1))
  adminStream.close()
})

test('reusing a rotated refresh token closes the streams of that session (on another instance too)', async (t) => {
  const user = await newUser('reuse-streams')
  const victim = await signIn(stack, user.email, PASSWORD)
  const bystander = await signIn(stack, user.email, PASSWORD)
  const job = await runningJob(victim.access_token)
  const victimStream = await opened(`${other.url}/jobs/${job.id}/events`, { authorization: `Bearer ${victim.access_token}` })
  const bystanderStream = await opened(`${other.url}/jobs/${job.id}/events`, { authorization: `Bearer ${bystander.access_token}` })
  const rotated = await stack.api('POST', '/auth/refresh', { body: { refresh_token: victim.refresh_token } })
  t.equal(rotated.status, 200)
  t.ok(await staysOpen(victimStream), 'a normal rotation closes nothing')
  const reuse = await stack.api('POST', '/auth/refresh', { body: { refresh_token: victim.refresh_token } })
  t.equal(reuse.status, 401)
  t.ok(await closesSoon(victimStream), 'the stream of the revoked session is closed')
  t.ok(await staysOpen(bystanderStream), 'the same user\'s other session is untouched')
  bystanderStream.close()
})

test('an admin watching someone else\'s job loses the stream when demoted; their own job\'s stream goes on', async (t) => {
  const owner = await newUser('watched-owner')
  const watcher = await newUser('demoted-admin', 'ADMIN')
  const ownerTokens = await signIn(stack, owner.email, PASSWORD)
  const watcherTokens = await signIn(stack, watcher.email, PASSWORD)
  const ownersJob = await runningJob(ownerTokens.access_token)
  const watchersJob = await runningJob(watcherTokens.access_token)
  const watching = await opened(`${other.url}/jobs/${ownersJob.id}/events`, { authorization: `Bearer ${watcherTokens.access_token}` })
  const own = await opened(`${other.url}/jobs/${watchersJob.id}/events`, { authorization: `Bearer ${watcherTokens.access_token}` })
  const ownerStream = await opened(`${stack.url}${ownersJob.events_url}`)
  t.equal((await stack.api('PATCH', `/users/${watcher.id}`, { token: adminToken, body: { role: 'USER' } })).status, 200)
  t.ok(await closesSoon(watching), 'the stream of another user\'s job is closed')
  t.ok(await staysOpen(own), 'the stream of their own job goes on')
  t.ok(await staysOpen(ownerStream, 50), 'the owner\'s stream goes on')
  t.equal((await stack.api('GET', `/jobs/${ownersJob.id}/events`, { token: watcherTokens.access_token })).status, 404, 'and it cannot be reopened')
  own.close()
  ownerStream.close()
})

test('a notice only says whom to check: garbage or a notice about a valid session closes nothing', async (t) => {
  const user = await newUser('forged-notice')
  const tokens = await signIn(stack, user.email, PASSWORD)
  const job = await runningJob(tokens.access_token)
  const stream = await opened(`${stack.url}/jobs/${job.id}/events`, { authorization: `Bearer ${tokens.access_token}` })
  for (const raw of ['not json', '{}', '[]', 'null', '{"session_id": 42}', '{"user_id": "not-a-uuid"}', JSON.stringify({ session_id: claimsOf(tokens.access_token).sid }), JSON.stringify({ user_id: user.id })]) {
    await publisher.publish(SESSIONS_REVOKED_CHANNEL, raw)
  }
  await publisher.publish('gateway:something-else', JSON.stringify({ user_id: user.id }))
  t.ok(await staysOpen(stream, 600), 'the stream of a session that is still valid stays open')
  t.ok(await stillDelivers(stream, job, 2))
  t.same((await stack.api('GET', '/health')).body, { status: 'ok' }, 'the gateway is fine')
  stream.close()
})

test('the periodic re-check closes streams whose session ended without a notice (SESSION_RECHECK_INTERVAL)', async (t) => {
  const checking = await startStack(services, { env: { ...env, SESSION_RECHECK_INTERVAL: '300ms' }, databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl })
  t.teardown(() => checking.close())
  const user = await newUser('recheck')
  const revoked = await signIn(stack, user.email, PASSWORD)
  const kept = await signIn(stack, user.email, PASSWORD)
  const job = await runningJob(revoked.access_token)
  const onChecking = await opened(`${checking.url}/jobs/${job.id}/events`, { authorization: `Bearer ${revoked.access_token}` })
  const onStack = await opened(`${stack.url}/jobs/${job.id}/events`, { authorization: `Bearer ${revoked.access_token}` })
  const keptStream = await opened(`${checking.url}/jobs/${job.id}/events`, { authorization: `Bearer ${kept.access_token}` })
  // As if the notice were lost (Redis down at that moment): the session ends in the database only.
  await stack.db.query(`UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1`, [claimsOf(revoked.access_token).sid])
  t.ok(await closesSoon(onChecking, 3_000), 'closed by the next periodic check')
  t.ok(await staysOpen(keptStream), 'a valid session\'s stream is left alone')
  t.ok(await staysOpen(onStack, 200), 'control: an instance that has not checked yet still has it open')
  onStack.close()
  keptStream.close()
})

test('SessionStreams: a stream authenticated just before a notice is checked when it starts being watched', async (t) => {
  const queries: unknown[][] = []
  const db = { query: async (_sql: string, params: unknown[]) => { queries.push(params); return { rows: [] } } } as any
  const registry = new SessionStreams(db)
  const sessionId = '11111111-1111-4111-8111-111111111111'
  const userId = '22222222-2222-4222-8222-222222222222'
  let closed = 0
  const checkedAt = Date.now() - 10
  await registry.noticed({ sessionId }) // revoked after the stream's session was checked, before it was watched
  const unwatch = registry.watch({ sessionId, userId, ownerId: userId, close: () => { closed++ } }, checkedAt)
  await eventually(() => closed === 1, 1_000)
  t.equal(queries.length, 1, 'checked against the database once')
  unwatch()
  t.equal(registry.size, 0)
  const late = registry.watch({ sessionId, userId, ownerId: userId, close: () => { closed++ } }, Date.now() + 1)
  await new Promise((r) => setTimeout(r, 20))
  t.equal(queries.length, 1, 'a stream authenticated after the notice is not checked again')
  late()
  t.same(parseNotice(JSON.stringify({ session_id: sessionId })), { sessionId })
  t.equal(parseNotice(JSON.stringify({ session_id: 'x' })), undefined)
})

test('sign-in costs the same time for an unknown email, a wrong password and a disabled account', async (t) => {
  const disabled = await newUser('timing-disabled')
  await stack.api('PATCH', `/users/${disabled.id}`, { token: adminToken, body: { disabled: true } })
  const cases = {
    'unknown email': { email: 'nobody-at-all@nexa.test', password: PASSWORD },
    'wrong password': { email: ADMIN.email, password: 'not-the-admin-password' },
    'disabled account': { email: disabled.email, password: PASSWORD },
  }
  await stack.api('POST', '/auth/login', { body: cases['unknown email'] }) // warms the decoy hash up
  const times: Record<string, number[]> = {}
  for (let round = 0; round < 5; round++) {
    for (const [why, body] of Object.entries(cases)) {
      const start = performance.now()
      const res = await stack.api('POST', '/auth/login', { body })
      ;(times[why] ??= []).push(performance.now() - start)
      t.equal(res.status, 401)
    }
  }
  // The fastest of each kind: other load on the machine only ever adds time, so the minimum is the
  // cost of the work itself (one scrypt of 128 MiB each time).
  const fastest = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(Math.min(...v))]))
  t.comment(`fastest sign-in answer (ms): ${JSON.stringify(fastest)}; all: ${JSON.stringify(Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.map(Math.round)])))}`)
  const values = Object.values(fastest)
  t.ok(Math.min(...values) > 50, 'every answer paid for a password hash')
  t.ok(Math.max(...values) / Math.min(...values) < 1.6, 'the fastest answers of each kind are within 60% of each other')
})

test('the metrics token is compared in constant time and a wrong one looks like no endpoint', async (t) => {
  const calls: Array<[string, Record<string, string>, number]> = [
    ['no token', {}, 404],
    ['wrong token of the same length', { authorization: `Bearer ${'x'.repeat(METRICS_TOKEN.length)}` }, 404],
    ['wrong token, another length', { authorization: 'Bearer short' }, 404],
    ['the token without its scheme', { authorization: METRICS_TOKEN }, 404],
    ['the right token', { authorization: `Bearer ${METRICS_TOKEN}` }, 200],
  ]
  for (const [why, headers, status] of calls) t.equal((await stack.api('GET', '/metrics', { headers })).status, status, why)
})

test('refresh tokens are stored as SHA-256 hashes only, never in clear', async (t) => {
  const user = await newUser('refresh-storage')
  const tokens = await signIn(stack, user.email, PASSWORD)
  const { rows } = await stack.db.query(
    `SELECT count(*)::int AS hashed, bool_and(length(token_hash) = 32) AS sized,
            bool_or(row_to_json(rt)::text LIKE '%' || $1 || '%') AS clear
       FROM refresh_tokens rt WHERE token_hash = sha256(convert_to($1, 'UTF8'))`,
    [tokens.refresh_token],
  )
  t.same(rows[0], { hashed: 1, sized: true, clear: false })
})

import t0, { type Test } from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { Redis } from 'ioredis'
import { startServices, startStack, eventually, retryingOn503, type Stack } from '../helpers/stack.js'
import { simplePdf } from '../pdf/fixtures.js'
import { NO_LOGIN_LIMITS, signIn, type ApiResponse } from './support.js'

// OWASP API4 (unrestricted resource consumption): body, upload, batch and page sizes are bounded;
// a user has at most USER_MAX_ACTIVE_JOBS jobs running (429 + Retry-After beyond); requests are
// limited per client address (RATE_LIMIT_MAX) and per user (RATE_LIMIT_USER_MAX), whatever address
// the user comes from, counted together by every instance (in Redis).

const { test } = t0
const MAX_ACTIVE = 2
const PER_USER = 12
const PER_ADDRESS = 20
const run = randomBytes(3).toString('hex') // unique emails and addresses, should Redis be shared (TEST_REDIS_URL)
const services = await startServices()
const stack: Stack = await startStack(services, {
  simulator: { steps: 1, stepMs: 5 },
  env: { ...NO_LOGIN_LIMITS, USER_MAX_ACTIVE_JOBS: String(MAX_ACTIVE), BATCH_MAX_ITEMS: '5', RATE_LIMIT_USER_MAX: '100000', RATE_LIMIT_MAX: '100000' },
})
// Two instances with tight request limits, behind a trusted proxy so each test client has its own address.
const limitedEnv = { ...NO_LOGIN_LIMITS, TRUST_PROXY: 'true', RATE_LIMIT_USER_MAX: String(PER_USER), RATE_LIMIT_MAX: String(PER_ADDRESS), RATE_LIMIT_WINDOW: '10m' }
const limitedA = await startStack(services, { env: limitedEnv, databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl })
const limitedB = await startStack(services, { env: limitedEnv, databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl })
const publisher = new Redis(services.redis.url)
t0.teardown(async () => { publisher.disconnect(); await limitedB.close(); await limitedA.close(); await stack.close(); await services.stop() })

const admin = await stack.login()
let clients = 0
const newAddress = () => `198.18.${randomInt(0, 256)}.${++clients % 250}`

function isTooMany(t: Test, res: ApiResponse, why: string, maxRetryAfter: number) {
  t.equal(res.status, 429, why)
  t.match(res.body, { statusCode: 429, error: 'Too Many Requests', code: 'too_many_requests', message: String }, `${why}: JSON error`)
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= maxRetryAfter, `${why}: Retry-After ${res.headers['retry-after']} s`)
}

test('bodies over 1 MB are refused with 413 on every JSON route, before any work', async (t) => {
  const huge = 'x'.repeat(1_100_000)
  const cases: Array<[string, string, unknown]> = [
    ['POST', '/auth/login', { email: 'a@nexa.test', password: huge }],
    ['POST', '/auth/refresh', { refresh_token: huge }],
    ['POST', '/users', { email: 'big@nexa.test', password: huge }],
    ['POST', '/classifications/batch', { partnumbers: [{ partnumber: 'X', description: huge }] }],
    ['PATCH', '/classifications/00000000-0000-4000-8000-000000000000', { status: huge }],
  ]
  for (const [method, path, body] of cases) {
    const res = await stack.api(method, path, { token: admin, body })
    t.equal(res.status, 413, `${method} ${path}`)
    t.match(res.body, { statusCode: 413, code: 'payload_too_large', message: String })
  }
})

test('uploads: one file per request, few and small fields, whatever the form holds', async (t) => {
  const pdf = await simplePdf(1)
  const before = Number((await stack.db.query('SELECT count(*) FROM documents')).rows[0].count)
  const forms: Array<[string, FormData]> = []
  const twoFiles = new FormData()
  twoFiles.append('file', new Blob([new Uint8Array(pdf)]), 'a.pdf')
  twoFiles.append('file', new Blob([new Uint8Array(pdf)]), 'b.pdf')
  forms.push(['two files', twoFiles])
  const manyFields = new FormData()
  for (let i = 0; i < 50; i++) manyFields.append(`f${i}`, 'v')
  manyFields.append('file', new Blob([new Uint8Array(pdf)]), 'a.pdf')
  forms.push(['50 fields before the file', manyFields])
  const bigField = new FormData()
  bigField.append('note', 'n'.repeat(100_000))
  bigField.append('file', new Blob([new Uint8Array(pdf)]), 'a.pdf')
  forms.push(['a 100 kB field before the file', bigField])
  let stored = 0
  for (const [why, form] of forms) {
    const res = await fetch(`${stack.url}/documents`, { method: 'POST', headers: { authorization: `Bearer ${admin}` }, body: form })
    const body = await res.json() as any
    t.ok(res.status < 500, `${why}: ${res.status} ${body.code ?? ''}`)
    if (res.status === 201) stored++
    else t.match(body, { statusCode: res.status, code: String, message: String })
  }
  const after = Number((await stack.db.query('SELECT count(*) FROM documents')).rows[0].count)
  t.equal(after - before, stored, 'at most one document per request')
})

test('page sizes are bounded on every list; batches by BATCH_MAX_ITEMS and the schema', async (t) => {
  for (const path of ['/jobs', '/documents', '/users', '/partnumbers']) {
    for (const query of ['limit=201', 'limit=0', 'limit=-1', 'limit=1e9']) {
      const res = await stack.api('GET', `${path}?${query}`, { token: admin })
      t.equal(res.status, 400, `${path}?${query}`)
    }
    t.equal((await stack.api('GET', `${path}?limit=200`, { token: admin })).status, 200, `${path}?limit=200`)
  }
  t.equal((await stack.api('GET', `/jobs?cursor=${'A'.repeat(201)}`, { token: admin })).status, 400, 'a cursor over 200 characters')
  t.equal((await stack.api('GET', `/users?after=${'a'.repeat(255)}`, { token: admin })).status, 400, 'an after over 254 characters')
  t.equal((await stack.api('GET', `/partnumbers?q=${'a'.repeat(101)}`, { token: admin })).status, 400, 'a search over 100 characters')

  const items = (n: number) => Array.from({ length: n }, (_, i) => ({ partnumber: `LIMIT-${i}` }))
  const tooMany = await stack.api('POST', '/classifications/batch', { token: admin, body: { partnumbers: items(6) } })
  t.equal(tooMany.status, 400)
  t.equal(tooMany.body.code, 'too_many_items', 'BATCH_MAX_ITEMS (5) distinct part numbers')
  const overSchema = await stack.api('POST', '/classifications/batch', { token: admin, body: { partnumbers: items(10_001) } })
  t.equal(overSchema.status, 400, 'more than 10 000 items is refused by the schema, whatever BATCH_MAX_ITEMS says')
})

test(`USER_MAX_ACTIVE_JOBS (${MAX_ACTIVE}): further jobs get 429 with Retry-After until one ends`, async (t) => {
  const alice = await stack.createUser(`cap-alice-${run}@nexa.test`)
  const bob = await stack.createUser(`cap-bob-${run}@nexa.test`)
  const hold = async (token: string, partnumber: string) => {
    await stack.scenario(partnumber, { outcome: 'silent', silentAfter: 0 })
    return stack.api('POST', '/classifications', { token, body: { partnumber } })
  }
  // A finished job, answered from history afterwards, and a failed one to retry.
  const known = await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'BC847BLT1G' } })
  await eventually(async () => (await stack.api('GET', `/jobs/${known.body.id}`, { token: alice.token })).body.status === 'DONE')
  await stack.scenario('CAP-FAILS', { outcome: 'fail', failAfter: 0 })
  const failing = await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'CAP-FAILS' } })
  await eventually(async () => (await stack.api('GET', `/jobs/${failing.body.id}`, { token: alice.token })).body.status === 'FAILED')

  const running = [await hold(alice.token, `CAP-1-${run}`), await hold(alice.token, `CAP-2-${run}`)]
  t.same(running.map((r) => r.status), [202, 202], `${MAX_ACTIVE} jobs running`)
  const jobsBefore = Number((await stack.db.query('SELECT count(*) FROM jobs WHERE owner_id = $1', [alice.id])).rows[0].count)
  isTooMany(t, await hold(alice.token, `CAP-3-${run}`), 'a third single job', 60)
  isTooMany(t, await stack.api('POST', '/classifications/batch', { token: alice.token, body: { partnumbers: [{ partnumber: `CAP-4-${run}` }] } }), 'a batch', 60)
  isTooMany(t, await stack.api('POST', `/jobs/${failing.body.id}/retry`, { token: alice.token }), 'a retry', 60)
  t.equal(Number((await stack.db.query('SELECT count(*) FROM jobs WHERE owner_id = $1', [alice.id])).rows[0].count), jobsBefore, 'no job was created')
  t.equal((await stack.db.query('SELECT status FROM jobs WHERE id = $1', [failing.body.id])).rows[0].status, 'FAILED', 'the failed job was not touched')

  const fromHistory = await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'bc847blt1g' } })
  t.equal(fromHistory.status, 202, 'an answer from history costs the AI server nothing and is not capped')
  t.equal(fromHistory.body.source, 'HISTORY')
  t.equal((await hold(bob.token, `CAP-BOB-${run}`)).status, 202, 'another user is not affected')

  // One of Alice's jobs ends: room for one more.
  const { rows } = await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [running[0]!.body.id])
  await publisher.publish(rows[0].channel, JSON.stringify({ job_id: running[0]!.body.id, status: 'failed', error: 'stopped by the test' }))
  await eventually(async () => (await stack.api('GET', `/jobs/${running[0]!.body.id}`, { token: alice.token })).body.status === 'FAILED')
  t.equal((await hold(alice.token, `CAP-5-${run}`)).status, 202, 'a new job is accepted once one has ended')
  isTooMany(t, await hold(alice.token, `CAP-6-${run}`), 'and the cap applies again', 60)
})

// The count and the insert are serialized per user (the owner's row is locked), so a burst cannot overshoot.
test(`the cap holds under concurrent requests: bursts of ${MAX_ACTIVE + 10} at once start at most ${MAX_ACTIVE}`, async (t) => {
  for (let round = 0; round < 3; round++) {
    const user = await stack.createUser(`cap-burst-${round}-${run}@nexa.test`)
    const partnumbers = Array.from({ length: MAX_ACTIVE + 10 }, (_, i) => `CAP-BURST-${round}-${i}-${run}`)
    for (const partnumber of partnumbers) await stack.scenario(partnumber, { outcome: 'silent', silentAfter: 0 })
    const answers = await Promise.all(partnumbers.map((partnumber) => stack.api('POST', '/classifications', { token: user.token, body: { partnumber } })))
    const statuses = answers.map((a) => a.status)
    t.ok(statuses.every((s) => s === 202 || s === 429), `round ${round + 1}: accepted or refused with 429 (${statuses.join(' ')})`)
    const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM jobs WHERE owner_id = $1 AND status IN ('QUEUED', 'RUNNING')`, [user.id])
    t.equal(rows[0].n, MAX_ACTIVE, `round ${round + 1}: exactly ${MAX_ACTIVE} running`)
    t.equal(statuses.filter((s) => s === 202).length, MAX_ACTIVE, `round ${round + 1}: exactly ${MAX_ACTIVE} accepted`)
  }
})

test(`per user: request ${PER_USER + 1} of one user is refused from any address, on any instance`, async (t) => {
  const user = { email: `rl-user-${run}@nexa.test`, password: 'rl-user-password' }
  t.equal((await retryingOn503(() => stack.api('POST', '/users', { token: admin, body: user }))).status, 201, 'the user is created (a client tries again while a busy gateway sheds load)')
  const other = { email: `rl-other-${run}@nexa.test`, password: 'rl-other-password' }
  t.equal((await retryingOn503(() => stack.api('POST', '/users', { token: admin, body: other }))).status, 201, 'the user is created (a client tries again while a busy gateway sheds load)')
  const token = (await signIn(stack, user.email, user.password)).access_token
  const otherToken = (await signIn(stack, other.email, other.password)).access_token
  const paths = ['/auth/me', '/jobs', '/documents', '/partnumbers']
  for (let i = 0; i < PER_USER; i++) {
    const target = i % 2 ? limitedA : limitedB
    const res = await target.api('GET', paths[i % paths.length]!, { token, headers: { 'x-forwarded-for': newAddress() } })
    t.equal(res.status, 200, `request ${i + 1}, from a new address, instance ${i % 2 ? 'A' : 'B'}`)
  }
  isTooMany(t, await limitedA.api('GET', '/auth/me', { token, headers: { 'x-forwarded-for': newAddress() } }), 'one more, from yet another address', 600)
  isTooMany(t, await limitedB.api('GET', '/jobs/00000000-0000-4000-8000-000000000000/events', { token, headers: { 'x-forwarded-for': newAddress() } }), 'an event stream too', 600)
  t.equal((await limitedA.api('GET', '/auth/me', { token: otherToken, headers: { 'x-forwarded-for': newAddress() } })).status, 200, 'another user is not affected')
  const anonymous = await limitedA.api('GET', '/auth/me', { headers: { 'x-forwarded-for': newAddress() } })
  t.equal(anonymous.status, 401, 'without a token: 401, not a limit of anyone')
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const forgedToken = `${header}.${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`
  const forged = await limitedA.api('GET', '/auth/me', { token: forgedToken, headers: { 'x-forwarded-for': newAddress() } })
  t.equal(forged.status, 401, 'a forged token of that user is not counted as them: 401')
})

test(`per client address: request ${PER_ADDRESS + 1} from one address is refused, whoever signs it`, async (t) => {
  const address = newAddress()
  const users = []
  for (let i = 0; i < 3; i++) {
    const u = { email: `rl-addr-${i}-${run}@nexa.test`, password: 'rl-addr-password' }
    t.equal((await retryingOn503(() => stack.api('POST', '/users', { token: admin, body: u }))).status, 201, 'the user is created (a client tries again while a busy gateway sheds load)')
    users.push((await signIn(stack, u.email, u.password)).access_token)
  }
  // Signed by three users, unsigned, forged, or for no route at all: every request from the address counts.
  const statuses: number[] = []
  for (let i = 0; i < PER_ADDRESS; i++) {
    const target = i % 2 ? limitedA : limitedB
    const kind = i % 5
    const res = kind === 3 ? await target.api('GET', '/auth/me', { headers: { 'x-forwarded-for': address } })
      : kind === 4 ? await target.api('GET', i % 10 === 4 ? '/no-such-route' : '/jobs', { token: 'forged.token.value', headers: { 'x-forwarded-for': address } })
        : await target.api('GET', '/auth/me', { token: users[kind], headers: { 'x-forwarded-for': address } })
    statuses.push(res.status)
  }
  t.same([...new Set(statuses)].sort(), [200, 401, 404], `${PER_ADDRESS} requests answered normally: ${statuses.join(' ')}`)
  const limited = await limitedA.api('GET', '/auth/me', { token: users[0], headers: { 'x-forwarded-for': address } })
  isTooMany(t, limited, 'one more from the same address', 600)
  t.equal((await limitedA.api('GET', '/auth/me', { token: users[0], headers: { 'x-forwarded-for': newAddress() } })).status, 200, 'the same user from another address')
  t.equal((await limitedA.api('GET', '/health', { headers: { 'x-forwarded-for': address } })).status, 200, '/health is never limited')
})

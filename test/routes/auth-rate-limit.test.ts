import t0, { type Test } from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { startServices, startStack, type Stack } from '../helpers/stack.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { createUser as createAccount } from '../../src/services/auth/accounts.js'
import { hashPassword } from '../../src/services/auth/passwords.js'

// Sign-in throttling counts failures only: per (address, email) pair a pause from the second failure
// in a row on, doubling with each further one (LOGIN_BACKOFF_BASE), per address a cap across emails
// (LOGIN_MAX_FAILURES_PER_ADDRESS), per email a cap on failures from addresses the account has not
// signed in from (LOGIN_MAX_FAILURES_PER_EMAIL). Behind nginx (TRUST_PROXY) the client address is
// X-Forwarded-For, which lets each test act from as many addresses as it likes. Emails and addresses
// are unique to the run, so counters left in a shared Redis (TEST_REDIS_URL) change nothing.

const { test } = t0
const MAX_PER_EMAIL = 4
const MAX_PER_ADDRESS = 6
const BACKOFF_BASE_SECONDS = 2
const run = randomBytes(4).toString('hex')
const env = {
  LOGIN_MAX_FAILURES_PER_EMAIL: String(MAX_PER_EMAIL),
  LOGIN_MAX_FAILURES_PER_ADDRESS: String(MAX_PER_ADDRESS),
  LOGIN_BACKOFF_BASE: `${BACKOFF_BASE_SECONDS}s`,
  TRUST_PROXY: 'true',
}

const services = await startServices()
const stack: Stack = await startStack(services, { env })
t0.teardown(async () => { await stack.close(); await services.stop() })

let clients = 0
/** A client address of its own (documentation range, randomised per run). */
const newClient = () => `198.51.${randomInt(0, 256)}.${++clients}`

type Answer = Awaited<ReturnType<Stack['api']>>
const attemptOn = (target: Stack) => (client: string, email: string, password: string) =>
  target.api('POST', '/auth/login', { body: { email, password }, headers: { 'x-forwarded-for': client } })
const attempt = attemptOn(stack)

// The accounts of this file store cheap password hashes: each sign-in costs milliseconds, not the
// 128 MiB scrypt of real accounts, so that dozens of them stay quick on a busy machine. (Unknown
// emails are still checked against the real cost.)
async function createUser(name: string) {
  const user = { email: `${name}-${run}@nexa.test`, password: `${name}-password-1` }
  await createAccount(stack.db, { email: user.email, passwordHash: await hashPassword(user.password, { N: 2 ** 10, r: 8, p: 1 }), role: 'USER' })
  return user
}

/** A 429 in the API's error shape; its Retry-After in seconds. */
function isTooMany(t: Test, res: Answer, why: string): number {
  t.equal(res.status, 429, why)
  t.same(res.body, { statusCode: 429, error: 'Too Many Requests', code: 'too_many_requests', message: 'Too many failed sign-in attempts; try again later' }, `${why}: JSON error`)
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 15 * 60, `${why}: Retry-After in seconds within the window (${res.headers['retry-after']})`)
  t.equal(res.headers['set-cookie'], undefined, `${why}: no cookie`)
  return retryAfter
}

const sessionCount = async () => Number((await stack.db.query('SELECT count(*) FROM sessions')).rows[0].count)

test('successes never count: 30 sign-ins in a row pass', async (t) => {
  const user = await createUser('successes')
  const home = newClient()
  const statuses = []
  for (let i = 0; i < 30; i++) statuses.push((await attempt(home, user.email, user.password)).status)
  for (let i = 0; i < 3; i++) statuses.push((await attempt(newClient(), user.email, user.password)).status)
  t.same(statuses, Array(33).fill(200), `30 from one address and 3 from new ones, with limits of ${MAX_PER_ADDRESS} failures per address and ${MAX_PER_EMAIL} per email`)
})

test('failures in a row from address X pause X for longer each time; the owner elsewhere is not slowed; a success resets X', async (t) => {
  const user = await createUser('backoff')
  const attacker = newClient()
  // Three failures from X in all, below the per-email cap: only the pair's pause is seen.
  t.equal((await attempt(attacker, user.email, 'wrong-password-123')).status, 401, 'failure 1')
  t.equal((await attempt(attacker, user.email, 'wrong-password-123')).status, 401, 'failure 2, at once: the first failure costs no pause (a typo)')
  const pauses: number[] = []
  for (let failure = 2; failure <= 3; failure++) {
    if (failure > 2) t.equal((await attempt(attacker, user.email, 'wrong-password-123')).status, 401, `failure ${failure}, after the pause`)
    // Even the right password waits for the pause to end.
    pauses.push(isTooMany(t, await attempt(attacker, user.email, user.password), `right after failure ${failure}`))
    if (failure === 3) t.equal((await attempt(newClient(), user.email, user.password)).status, 200, 'meanwhile the owner signs in from another address')
    await sleep(pauses.at(-1)! * 1000 + 200)
  }
  t.ok(pauses[0]! <= BACKOFF_BASE_SECONDS && pauses[1]! > BACKOFF_BASE_SECONDS, `the pause doubles: Retry-After ${pauses.join(' then ')} s`)

  t.equal((await attempt(attacker, user.email, user.password)).status, 200, 'after the pause, the right password signs in from X')
  t.equal((await attempt(attacker, user.email, 'wrong-password-123')).status, 401)
  t.equal((await attempt(attacker, user.email, user.password)).status, 200, 'a failure right after the success costs no pause: the success reset the count')
})

test(`per email: after ${MAX_PER_EMAIL} failures from unknown addresses, any unknown address waits; the owner's known-good address still signs in`, async (t) => {
  const user = await createUser('per-email')
  const home = newClient()
  t.equal((await attempt(home, user.email, user.password)).status, 200, 'the owner signs in at home: a known-good address from now on')

  // A distributed attack: every failure from another address.
  for (let i = 1; i <= MAX_PER_EMAIL; i++) {
    t.equal((await attempt(newClient(), user.email, 'wrong-password-123')).status, 401, `attack failure ${i} is answered normally`)
  }
  const before = await sessionCount()
  isTooMany(t, await attempt(newClient(), user.email, user.password), 'an unknown address, even with the right password')
  isTooMany(t, await attempt(newClient(), user.email.toUpperCase(), user.password), 'the same email in capitals')
  t.equal(await sessionCount(), before, 'no session was opened')

  const owner = await attempt(home, user.email, user.password)
  t.equal(owner.status, 200, 'the owner at the known-good address signs in during the attack')
  t.type(owner.body.access_token, 'string')
  for (let i = 0; i < 5; i++) isTooMany(t, await attempt(newClient(), user.email, 'wrong-password-123'), `the attack goes on (${i + 1})`)
  t.equal((await attempt(home, user.email, user.password)).status, 200, 'and the owner still signs in')

  const other = await createUser('per-email-other')
  t.equal((await attempt(newClient(), other.email, other.password)).status, 200, 'another email is not affected')
})

test('an unknown email is throttled exactly as a real one: the answers cannot tell them apart', async (t) => {
  const real = await createUser('real')
  const unknown = `nobody-${run}@nexa.test`
  const answers: Record<string, Answer[]> = { real: [], unknown: [] }
  for (const [kind, email] of [['real', real.email], ['unknown', unknown]] as const) {
    for (let i = 0; i <= MAX_PER_EMAIL; i++) answers[kind]!.push(await attempt(newClient(), email, 'wrong-password-123'))
  }
  const shape = (res: Answer) => ({ status: res.status, body: res.body, retryAfter: res.headers['retry-after'] !== undefined })
  t.same(answers.unknown!.map(shape), answers.real!.map(shape), 'the same statuses, bodies and headers')
  t.same(answers.real!.map((a) => a.status), [...Array(MAX_PER_EMAIL).fill(401), 429])
})

test(`per address: ${MAX_PER_ADDRESS} failures across emails (password spraying) make the address wait, even with the right password`, async (t) => {
  const user = await createUser('per-address')
  const client = newClient()
  for (let i = 1; i <= MAX_PER_ADDRESS; i++) {
    // A different email each time, so only the address counter can reach its limit.
    const res = await attempt(client, `sprayed-${i}-${run}@nexa.test`, 'some-password-123')
    t.equal(res.status, 401, `failure ${i} is answered normally`)
  }
  isTooMany(t, await attempt(client, user.email, user.password), 'right password, same address')
  t.equal((await attempt(newClient(), user.email, user.password)).status, 200, 'the same user from another address signs in')
})

test('a refused body is not an attempt: malformed requests do not count', async (t) => {
  const user = await createUser('malformed')
  const client = newClient()
  for (let i = 0; i < MAX_PER_ADDRESS + 2; i++) {
    const res = await stack.api('POST', '/auth/login', { body: { email: user.email }, headers: { 'x-forwarded-for': client } })
    t.equal(res.status, 400)
  }
  t.equal((await attempt(client, user.email, user.password)).status, 200, 'the first real attempt goes through')
})

test('with Redis down nobody is locked out, and failures are still counted (in the instance\'s memory)', async (t) => {
  const redis = await startRedisServer()
  const outage = await startStack({ ...services, redis: { url: redis.url, handle: redis } }, { env, databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl })
  t.teardown(() => outage.close())
  const attemptHere = attemptOn(outage)
  const user = await createUser('outage')
  await redis.stop()

  t.equal((await attemptHere(newClient(), user.email, user.password)).status, 200, 'the right password signs in')
  for (let i = 1; i <= MAX_PER_EMAIL; i++) {
    t.equal((await attemptHere(newClient(), user.email, 'wrong-password-123')).status, 401, `failure ${i}`)
  }
  isTooMany(t, await attemptHere(newClient(), user.email, user.password), 'the per-email cap still holds')
})

import t0, { type Test } from 'tap'
import { randomBytes, randomInt } from 'node:crypto'
import { startServices, startStack, type Stack } from '../helpers/stack.js'

// Sign-in attempts are limited per email (LOGIN_MAX_PER_EMAIL) and per client address
// (LOGIN_MAX_PER_IP). Behind nginx (TRUST_PROXY) the client address is X-Forwarded-For, which
// lets each test be its own client. Emails and addresses are unique to the run, so counters left
// in a shared Redis (TEST_REDIS_URL) by another run cannot change the outcome.

const { test } = t0
const MAX_PER_EMAIL = 3
const MAX_PER_IP = 5
const run = randomBytes(4).toString('hex')
const admin = { email: `admin-${run}@nexa.test`, password: 'admin-password-123' }

const services = await startServices()
const stack: Stack = await startStack(services, {
  env: {
    LOGIN_MAX_PER_EMAIL: String(MAX_PER_EMAIL),
    LOGIN_MAX_PER_IP: String(MAX_PER_IP),
    TRUST_PROXY: 'true',
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
  },
})
t0.teardown(async () => { await stack.close(); await services.stop() })

let clients = 0
/** A client address of its own (documentation range, randomised per run). */
const newClient = () => `198.51.${randomInt(0, 256)}.${++clients}`

const attempt = (client: string, email: string, password: string) =>
  stack.api('POST', '/auth/login', { body: { email, password }, headers: { 'x-forwarded-for': client } })

const adminToken = (await attempt(newClient(), admin.email, admin.password)).body.access_token as string
async function createUser(name: string) {
  const user = { email: `${name}-${run}@nexa.test`, password: `${name}-password-1` }
  const res = await stack.api('POST', '/users', { token: adminToken, body: user, headers: { 'x-forwarded-for': newClient() } })
  if (res.status !== 201) throw new Error(`create user failed: ${res.status} ${JSON.stringify(res.body)}`)
  return user
}

function isTooMany(t: Test, res: Awaited<ReturnType<Stack['api']>>, why: string) {
  t.equal(res.status, 429, why)
  t.match(res.body, { statusCode: 429, error: 'Too Many Requests', code: 'too_many_requests', message: String }, `${why}: JSON error`)
  const retryAfter = Number(res.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 15 * 60, `${why}: Retry-After in seconds within the window (${res.headers['retry-after']})`)
  t.equal(res.headers['set-cookie'], undefined, `${why}: no cookie`)
  t.equal(res.body.access_token, undefined, `${why}: no token`)
}

test(`per email: the ${MAX_PER_EMAIL + 1}th attempt is refused with 429, even with the right password, from any address`, async (t) => {
  const user = await createUser('per-email')
  for (let i = 1; i <= MAX_PER_EMAIL; i++) {
    const res = await attempt(newClient(), user.email, 'wrong-password-123')
    t.equal(res.status, 401, `attempt ${i} is answered normally`)
  }
  const sessionsBefore = Number((await stack.db.query('SELECT count(*) FROM sessions')).rows[0].count)
  isTooMany(t, await attempt(newClient(), user.email, user.password), 'right password, from a new address')
  isTooMany(t, await attempt(newClient(), user.email.toUpperCase(), user.password), 'the same email in capitals')
  t.equal(Number((await stack.db.query('SELECT count(*) FROM sessions')).rows[0].count), sessionsBefore, 'no session was opened')

  const other = await createUser('per-email-other')
  t.equal((await attempt(newClient(), other.email, other.password)).status, 200, 'another email is not affected')
})

test(`per client address: the ${MAX_PER_IP + 1}th attempt is refused with 429, even with the right password`, async (t) => {
  const user = await createUser('per-ip')
  const client = newClient()
  for (let i = 1; i <= MAX_PER_IP; i++) {
    // A different email each time, so only the address counter can reach its limit.
    const res = await attempt(client, `nobody-${i}-${run}@nexa.test`, 'some-password-123')
    t.equal(res.status, 401, `attempt ${i} is answered normally`)
  }
  isTooMany(t, await attempt(client, user.email, user.password), 'right password, same address')
  t.equal((await attempt(newClient(), user.email, user.password)).status, 200, 'the same user from another address signs in')
})

test('successful sign-ins count too: a limit is on attempts, not only on failures', async (t) => {
  const user = await createUser('successes')
  for (let i = 1; i <= MAX_PER_EMAIL; i++) {
    t.equal((await attempt(newClient(), user.email, user.password)).status, 200, `sign-in ${i}`)
  }
  isTooMany(t, await attempt(newClient(), user.email, user.password), 'one more')
})

test('a refused body is not an attempt: malformed requests do not consume the limit', async (t) => {
  const user = await createUser('malformed')
  const client = newClient()
  for (let i = 0; i < MAX_PER_IP + 2; i++) {
    const res = await stack.api('POST', '/auth/login', { body: { email: user.email }, headers: { 'x-forwarded-for': client } })
    t.equal(res.status, 400)
  }
  t.equal((await attempt(client, user.email, user.password)).status, 200, 'the first real attempt goes through')
})

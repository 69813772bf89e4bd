import t0 from 'tap'
import { ADMIN, NO_LOGIN_LIMITS, startServices, startStack, type Stack } from '../helpers/stack.js'

// User management: administrators only; what a client sees (status, JSON bodies, headers) and what
// it does to the users' sessions.

const { test } = t0
const services = await startServices()
const stack: Stack = await startStack(services, { env: NO_LOGIN_LIMITS })
t0.teardown(async () => { await stack.close(); await services.stop() })

/** As stack.api, and checks that no response ever carries a password or its hash. */
async function api(method: string, path: string, options: Parameters<Stack['api']>[2] = {}) {
  const res = await stack.api(method, path, options)
  const text = JSON.stringify(res.body ?? '')
  if (/scrypt\$|password_hash|"password"/.test(text)) throw new Error(`${method} ${path} leaked a password hash: ${text}`)
  return res
}

const admin = await stack.login()
const { rows: [adminRow] } = await stack.db.query('SELECT id FROM users WHERE email = $1', [ADMIN.email])
const adminId: string = adminRow.id
const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000'
const USER_KEYS = ['created_at', 'disabled', 'email', 'id', 'role', 'updated_at']
const userCount = async () => Number((await stack.db.query('SELECT count(*) FROM users')).rows[0].count)
const roleInDb = async (id: string) => (await stack.db.query('SELECT role FROM users WHERE id = $1', [id])).rows[0].role as string
const me = (token: string) => api('GET', '/auth/me', { token })
const invalidRequest = { statusCode: 400, error: 'Bad Request', code: 'invalid_request', message: String }
const forbidden = { statusCode: 403, error: 'Forbidden', code: 'forbidden', message: String }

test('POST /users creates a user: 201, Location, no password hash; the user can sign in', async (t) => {
  const before = await userCount()
  const res = await api('POST', '/users', { token: admin, body: { email: 'New.Person@Nexa.test', password: 'new-person-password' } })
  t.equal(res.status, 201)
  t.same(Object.keys(res.body).sort(), USER_KEYS, 'exactly the public fields')
  t.match(res.body, { id: /^[0-9a-f-]{36}$/, email: 'new.person@nexa.test', role: 'USER', disabled: false })
  t.ok(!Number.isNaN(Date.parse(res.body.created_at)) && !Number.isNaN(Date.parse(res.body.updated_at)), 'ISO timestamps')
  t.equal(res.headers.location, `/users/${res.body.id}`)
  t.equal(await userCount(), before + 1)

  const login = await api('POST', '/auth/login', { body: { email: 'new.person@nexa.test', password: 'new-person-password' } })
  t.equal(login.status, 200, 'the new user signs in')
  t.same(login.body.user, { id: res.body.id, email: 'new.person@nexa.test', role: 'USER' })

  const second = await api('POST', '/users', { token: admin, body: { email: 'second-admin@nexa.test', password: 'second-admin-password', role: 'ADMIN' } })
  t.equal(second.status, 201)
  t.equal(second.body.role, 'ADMIN', 'an admin can create another admin')
})

test('POST /users with a taken email is 409 email_taken, whatever its case', async (t) => {
  await stack.createUser('taken@nexa.test')
  const before = await userCount()
  for (const email of ['taken@nexa.test', 'TAKEN@nexa.test', ADMIN.email]) {
    const res = await api('POST', '/users', { token: admin, body: { email, password: 'another-password-1' } })
    t.equal(res.status, 409, email)
    t.same(res.body, { statusCode: 409, error: 'Conflict', code: 'email_taken', message: 'A user with this email already exists' })
  }
  t.equal(await userCount(), before, 'nothing was created')
})

test('POST /users refuses weak passwords, bad emails and extra properties with 400, and creates nothing', async (t) => {
  const before = await userCount()
  const ok = { email: 'valid@nexa.test', password: 'long-enough-password' }
  const cases: Array<[string, unknown]> = [
    ['no body', undefined],
    ['password of 11 characters', { ...ok, password: 'short-pass1' }],
    ['empty password', { ...ok, password: '' }],
    ['password too long', { ...ok, password: 'p'.repeat(257) }],
    ['missing password', { email: ok.email }],
    ['missing email', { password: ok.password }],
    ['not an email', { ...ok, email: 'not-an-email' }],
    ['email of wrong type', { ...ok, email: ['valid@nexa.test'] }],
    ['password of wrong type', { ...ok, password: 123456789012345 }],
    ['unknown role', { ...ok, role: 'ROOT' }],
    ['role in lower case', { ...ok, role: 'admin' }],
    ['mass assignment: password_hash', { ...ok, password_hash: 'scrypt$1$1$1$AAAA$AAAA' }],
    ['mass assignment: id', { ...ok, id: UNKNOWN_ID }],
    ['mass assignment: disabled', { ...ok, disabled: false }],
    ['mass assignment: created_at', { ...ok, created_at: '2000-01-01T00:00:00Z' }],
  ]
  for (const [why, body] of cases) {
    const res = await api('POST', '/users', { token: admin, body })
    t.equal(res.status, 400, why)
    t.match(res.body, invalidRequest, `${why}: JSON error`)
  }
  const weak = await api('POST', '/users', { token: admin, body: { ...ok, password: 'short-pass1' } })
  t.match(weak.body.message, /password/, 'the message names the field')
  t.equal(await userCount(), before, 'nothing was created')
  t.equal((await stack.db.query('SELECT count(*) FROM users WHERE id = $1', [UNKNOWN_ID])).rows[0].count, '0')
})

test('GET /users lists users by email, page by page (limit, after, next_after)', async (t) => {
  for (const name of ['page-a', 'page-b', 'page-c', 'page-d', 'page-e']) {
    const res = await api('POST', '/users', { token: admin, body: { email: `${name}@nexa.test`, password: 'page-user-password' } })
    t.equal(res.status, 201)
  }
  const expected = (await stack.db.query('SELECT id, email, role, disabled FROM users ORDER BY email')).rows

  const all = await api('GET', '/users', { token: admin })
  t.equal(all.status, 200)
  t.same(all.body.items.map((u: any) => u.email), expected.map((u) => u.email), 'default page: every user, by email')
  t.equal(all.body.next_after, null, 'no next page')
  for (const item of all.body.items) t.same(Object.keys(item).sort(), USER_KEYS)

  const seen: any[] = []
  let after: string | null = null
  let pages = 0
  do {
    const query: string = `limit=2${after === null ? '' : `&after=${encodeURIComponent(after)}`}`
    const page = await api('GET', `/users?${query}`, { token: admin })
    t.equal(page.status, 200, `page ${++pages}`)
    t.ok(page.body.items.length <= 2, 'no more than the limit')
    if (page.body.next_after !== null) t.equal(page.body.next_after, page.body.items.at(-1).email, 'next_after is the last email of the page')
    seen.push(...page.body.items)
    after = page.body.next_after
  } while (after !== null && pages < 50)
  t.same(seen.map((u) => ({ id: u.id, email: u.email, role: u.role, disabled: u.disabled })), expected, 'the pages add up to every user once, in order')

  const afterC = await api('GET', `/users?limit=2&after=${encodeURIComponent('page-c@nexa.test')}`, { token: admin })
  t.same(afterC.body.items.map((u: any) => u.email), ['page-d@nexa.test', 'page-e@nexa.test'])

  for (const [why, query] of [['limit 0', 'limit=0'], ['limit 201', 'limit=201'], ['limit not a number', 'limit=ten'], ['unknown parameter', 'role=ADMIN']] as const) {
    const res = await api('GET', `/users?${query}`, { token: admin })
    t.equal(res.status, 400, why)
    t.match(res.body, invalidRequest, `${why}: JSON error`)
  }
})

test('PATCH /users/:id changes the role, effective at once on the user\'s existing token', async (t) => {
  const user = await stack.createUser('promoted@nexa.test')
  t.match(await api('GET', '/users', { token: user.token }), { status: 403 }, 'a USER cannot list users')

  const promoted = await api('PATCH', `/users/${user.id}`, { token: admin, body: { role: 'ADMIN' } })
  t.equal(promoted.status, 200)
  t.same(Object.keys(promoted.body).sort(), USER_KEYS)
  t.match(promoted.body, { id: user.id, role: 'ADMIN', disabled: false })
  t.ok(Date.parse(promoted.body.updated_at) >= Date.parse(promoted.body.created_at))
  t.equal((await api('GET', '/users', { token: user.token })).status, 200, 'the same token now has admin rights')
  t.equal((await me(user.token)).body.role, 'ADMIN')

  const demoted = await api('PATCH', `/users/${user.id}`, { token: admin, body: { role: 'USER' } })
  t.equal(demoted.status, 200)
  t.equal(demoted.body.role, 'USER')
  t.match(await api('GET', '/users', { token: user.token }), { status: 403, body: forbidden }, 'and loses them at once')
})

test('PATCH /users/:id disables a user: their tokens are refused at once and they cannot sign in', async (t) => {
  const password = 'to-be-disabled-pw'
  const user = await stack.createUser('disabled@nexa.test', password)
  const session = await api('POST', '/auth/login', { body: { email: 'disabled@nexa.test', password } })
  t.equal((await me(user.token)).status, 200)

  const res = await api('PATCH', `/users/${user.id}`, { token: admin, body: { disabled: true } })
  t.equal(res.status, 200)
  t.match(res.body, { id: user.id, disabled: true, role: 'USER' })

  for (const [why, token] of [['first session', user.token], ['second session', session.body.access_token]]) {
    const refused = await me(token)
    t.equal(refused.status, 401, `${why}: access token refused at once`)
    t.match(refused.body, { statusCode: 401, error: 'Unauthorized', code: 'unauthorized', message: String })
  }
  t.equal((await api('GET', '/auth/me', { headers: { cookie: `nexa_session=${user.token}` } })).status, 401, 'by cookie too')
  t.equal((await api('POST', '/auth/refresh', { body: { refresh_token: session.body.refresh_token } })).status, 401, 'refresh token refused')
  const login = await api('POST', '/auth/login', { body: { email: 'disabled@nexa.test', password } })
  t.equal(login.status, 401, 'cannot sign in')
  t.equal(login.body.code, 'invalid_credentials')

  const enabled = await api('PATCH', `/users/${user.id}`, { token: admin, body: { disabled: false } })
  t.equal(enabled.status, 200)
  t.equal(enabled.body.disabled, false)
  t.equal((await me(user.token)).status, 401, 're-enabling does not revive old sessions')
  t.equal((await api('POST', '/auth/login', { body: { email: 'disabled@nexa.test', password } })).status, 200, 'but the user can sign in again')
})

test('an admin cannot disable or demote themself (409)', async (t) => {
  for (const body of [{ disabled: true }, { role: 'USER' }, { role: 'USER', disabled: false }, { role: 'ADMIN', disabled: true }]) {
    const res = await api('PATCH', `/users/${adminId}`, { token: admin, body })
    t.equal(res.status, 409, JSON.stringify(body))
    t.match(res.body, { statusCode: 409, error: 'Conflict', code: 'cannot_demote_self', message: String })
  }
  const { rows: [row] } = await stack.db.query('SELECT role, disabled FROM users WHERE id = $1', [adminId])
  t.same(row, { role: 'ADMIN', disabled: false }, 'unchanged')
  t.equal((await me(admin)).status, 200, 'the admin\'s session goes on')
  const noop = await api('PATCH', `/users/${adminId}`, { token: admin, body: { role: 'ADMIN', disabled: false } })
  t.equal(noop.status, 200, 'confirming their own role is harmless')
})

test('a USER gets 403 on every /users route and changes nothing', async (t) => {
  const user = await stack.createUser('plain-user@nexa.test')
  const target = await stack.createUser('target@nexa.test')
  const before = (await stack.db.query('SELECT id, role, disabled, updated_at FROM users ORDER BY id')).rows
  const calls: Array<[string, string, unknown]> = [
    ['POST', '/users', { email: 'made-by-user@nexa.test', password: 'made-by-user-password', role: 'ADMIN' }],
    ['GET', '/users', undefined],
    ['GET', '/users?limit=1', undefined],
    ['PATCH', `/users/${target.id}`, { disabled: true }],
    ['PATCH', `/users/${adminId}`, { role: 'USER' }],
    ['PATCH', `/users/${user.id}`, { role: 'ADMIN' }],
    ['PATCH', `/users/${UNKNOWN_ID}`, { role: 'ADMIN' }],
  ]
  for (const [method, path, body] of calls) {
    const res = await api(method, path, { token: user.token, body })
    t.equal(res.status, 403, `${method} ${path}`)
    t.match(res.body, forbidden, `${method} ${path}: JSON error`)
  }
  t.same((await stack.db.query('SELECT id, role, disabled, updated_at FROM users ORDER BY id')).rows, before, 'nothing changed')
  t.equal((await me(target.token)).status, 200, 'the target was not disabled')
})

test('without a valid token every /users route is 401', async (t) => {
  for (const [method, path, body] of [['GET', '/users', undefined], ['POST', '/users', { email: 'x@nexa.test', password: 'xxxxxxxxxxxxxxx' }], ['PATCH', `/users/${adminId}`, { role: 'USER' }]] as const) {
    for (const token of [undefined, 'not.a.token']) {
      const res = await api(method, path, { token, body })
      t.equal(res.status, 401, `${method} ${path} with ${token ?? 'no token'}`)
      t.match(res.body, { statusCode: 401, code: 'unauthorized', message: String })
    }
  }
})

test('PATCH /users/:id: unknown id is 404, malformed id or body is 400', async (t) => {
  const unknown = await api('PATCH', `/users/${UNKNOWN_ID}`, { token: admin, body: { disabled: true } })
  t.equal(unknown.status, 404)
  t.same(unknown.body, { statusCode: 404, error: 'Not Found', code: 'user_not_found', message: 'user not found' })

  const user = await stack.createUser('patch-target@nexa.test')
  const before = (await stack.db.query('SELECT * FROM users WHERE id = $1', [user.id])).rows[0]
  const cases: Array<[string, string, unknown]> = [
    ['id not a uuid', '/users/not-a-uuid', { disabled: true }],
    ['id with SQL', `/users/${encodeURIComponent("1' OR '1'='1")}`, { disabled: true }],
    ['empty body', `/users/${user.id}`, {}],
    ['no body', `/users/${user.id}`, undefined],
    ['unknown role', `/users/${user.id}`, { role: 'SUPERUSER' }],
    ['disabled of wrong type', `/users/${user.id}`, { disabled: 'yes' }],
    ['disabled as a string', `/users/${user.id}`, { disabled: 'true' }],
    ['mass assignment: email', `/users/${user.id}`, { email: 'stolen@nexa.test' }],
    ['mass assignment: password_hash', `/users/${user.id}`, { disabled: false, password_hash: 'scrypt$1$1$1$AAAA$AAAA' }],
    ['mass assignment: id', `/users/${user.id}`, { role: 'USER', id: UNKNOWN_ID }],
  ]
  for (const [why, path, body] of cases) {
    const res = await api('PATCH', path, { token: admin, body })
    t.equal(res.status, 400, why)
    t.match(res.body, invalidRequest, `${why}: JSON error`)
  }
  t.same((await stack.db.query('SELECT * FROM users WHERE id = $1', [user.id])).rows[0], before, 'the user is unchanged')
})

test('mass assignment: a user cannot make themself an admin through any route', async (t) => {
  const password = 'wants-to-be-admin'
  const user = await stack.createUser('climber@nexa.test', password)
  const tokens = (await api('POST', '/auth/login', { body: { email: 'climber@nexa.test', password } })).body
  const attempts: Array<[string, string, unknown, number]> = [
    ['PATCH', `/users/${user.id}`, { role: 'ADMIN' }, 403],
    ['POST', '/users', { email: 'climber@nexa.test', password, role: 'ADMIN' }, 403],
    ['POST', '/auth/login', { email: 'climber@nexa.test', password, role: 'ADMIN' }, 400],
    ['POST', '/auth/refresh', { refresh_token: tokens.refresh_token, role: 'ADMIN' }, 400],
    ['PATCH', '/auth/me', { role: 'ADMIN' }, 404],
    ['PUT', '/auth/me', { role: 'ADMIN' }, 404],
    ['POST', '/auth/me', { role: 'ADMIN' }, 404],
    ['PUT', `/users/${user.id}`, { role: 'ADMIN' }, 404],
  ]
  for (const [method, path, body, status] of attempts) {
    const res = await api(method, path, { token: tokens.access_token, body })
    t.equal(res.status, status, `${method} ${path}`)
    t.match(res.body, { statusCode: status, code: String, message: String }, `${method} ${path}: JSON error`)
  }
  t.equal(await roleInDb(user.id), 'USER', 'still a USER in the database')
  t.equal((await me(tokens.access_token)).body.role, 'USER', 'and to the gateway')
  const refreshed = await api('POST', '/auth/refresh', { body: { refresh_token: tokens.refresh_token } })
  t.equal(refreshed.status, 200, 'the refused attempts did not spend the refresh token')
  t.equal(refreshed.body.user.role, 'USER')
})

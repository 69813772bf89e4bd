import t0, { type Test } from 'tap'
import { createHmac } from 'node:crypto'
import { request } from 'undici'
import { ADMIN, NO_LOGIN_LIMITS, startServices, startStack, type Stack } from '../helpers/stack.js'

// Sign-in, tokens, sessions, refresh rotation, logout, the bootstrapped admin and password storage,
// all seen from the outside: status codes, JSON error bodies, headers and cookies.

const { test } = t0
const services = await startServices()
const stack: Stack = await startStack(services, { env: NO_LOGIN_LIMITS })
t0.teardown(async () => { await stack.close(); await services.stop() })

type Response = Awaited<ReturnType<Stack['api']>>

/** As stack.api, and checks that no response ever carries a password or its hash. */
async function api(method: string, path: string, options: Parameters<Stack['api']>[2] = {}): Promise<Response> {
  const res = await stack.api(method, path, options)
  const text = JSON.stringify(res.body ?? '')
  if (/scrypt\$|password_hash|"password"/.test(text)) throw new Error(`${method} ${path} leaked a password hash: ${text}`)
  return res
}

interface Cookie { value: string; attributes: Record<string, string | true> }

function cookiesOf(res: Response): Record<string, Cookie> {
  const header = res.headers['set-cookie']
  const lines: string[] = header === undefined ? [] : Array.isArray(header) ? header : [header]
  const cookies: Record<string, Cookie> = {}
  for (const line of lines) {
    const [pair, ...attrs] = line.split(';').map((s) => s.trim())
    const eq = pair!.indexOf('=')
    const attributes: Record<string, string | true> = {}
    for (const attr of attrs) {
      const i = attr.indexOf('=')
      if (i === -1) attributes[attr.toLowerCase()] = true
      else attributes[attr.slice(0, i).toLowerCase()] = attr.slice(i + 1)
    }
    cookies[pair!.slice(0, eq)] = { value: pair!.slice(eq + 1), attributes }
  }
  return cookies
}

async function login(email = ADMIN.email, password = ADMIN.password) {
  const res = await api('POST', '/auth/login', { body: { email, password } })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as { access_token: string; refresh_token: string; user: { id: string; email: string; role: string } }
}

const me = (token: string) => api('GET', '/auth/me', { token })
const unauthorized = { statusCode: 401, error: 'Unauthorized', code: 'unauthorized', message: String }
const invalidRefresh = { statusCode: 401, error: 'Unauthorized', code: 'invalid_refresh_token', message: String }

function cleared(t: Test, res: Response) {
  const cookies = cookiesOf(res)
  for (const [name, path] of [['nexa_session', '/'], ['nexa_refresh', '/auth']] as const) {
    t.equal(cookies[name]?.value, '', `${name} is emptied`)
    t.equal(cookies[name]?.attributes['max-age'], '0', `${name} expires now`)
    t.equal(cookies[name]?.attributes.path, path, `${name} is cleared on its own path`)
  }
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>
function signJwt(claims: Record<string, unknown>, secret: string, alg: 'HS256' | 'HS512' = 'HS256') {
  const data = `${b64({ alg, typ: 'JWT' })}.${b64(claims)}`
  return `${data}.${createHmac(alg === 'HS256' ? 'sha256' : 'sha512', secret).update(data).digest('base64url')}`
}
const now = () => Math.floor(Date.now() / 1000)
const sessionCount = async () => Number((await stack.db.query('SELECT count(*) FROM sessions')).rows[0].count)

test('sign-in returns Bearer tokens and the user, and sets httpOnly SameSite cookies', async (t) => {
  const res = await api('POST', '/auth/login', { body: { email: ADMIN.email, password: ADMIN.password } })
  t.equal(res.status, 200)
  t.same(Object.keys(res.body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type', 'user'])
  t.equal(res.body.token_type, 'Bearer')
  t.equal(res.body.expires_in, 900, 'ACCESS_TOKEN_TTL (15m) in seconds')
  t.match(res.body.access_token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT')
  t.match(res.body.refresh_token, /^[\w-]{40,}$/, 'an opaque refresh token')
  const { rows: [admin] } = await stack.db.query('SELECT id FROM users WHERE email = $1', [ADMIN.email])
  t.same(res.body.user, { id: admin.id, email: ADMIN.email, role: 'ADMIN' })
  t.equal(res.headers['cache-control'], 'no-store', 'tokens are never cached')

  const cookies = cookiesOf(res)
  t.same(Object.keys(cookies).sort(), ['nexa_refresh', 'nexa_session'])
  t.equal(cookies.nexa_session!.value, res.body.access_token)
  t.match(cookies.nexa_session!.attributes, { httponly: true, samesite: 'Lax', path: '/', 'max-age': '900' })
  t.equal(cookies.nexa_refresh!.value, res.body.refresh_token)
  t.match(cookies.nexa_refresh!.attributes, { httponly: true, samesite: 'Strict', path: '/auth', 'max-age': String(30 * 86400) })

  const mixedCase = await api('POST', '/auth/login', { body: { email: '  Admin@NEXA.test ', password: ADMIN.password } })
  t.equal(mixedCase.status, 200, 'the email is matched without case or surrounding spaces')
  t.equal(mixedCase.body.user.id, admin.id)
})

test('unknown email, wrong password and disabled account get the same answer', async (t) => {
  const user = await stack.createUser('soon-disabled@nexa.test', 'soon-disabled-pass')
  const adminToken = (await login()).access_token
  t.equal((await api('PATCH', `/users/${user.id}`, { token: adminToken, body: { disabled: true } })).status, 200)
  const sessionsBefore = await sessionCount()

  const attempts = {
    'unknown email': { email: 'nobody@nexa.test', password: ADMIN.password },
    'wrong password': { email: ADMIN.email, password: 'not-the-admin-password' },
    'disabled account, right password': { email: 'soon-disabled@nexa.test', password: 'soon-disabled-pass' },
  }
  const answers = []
  for (const [why, body] of Object.entries(attempts)) {
    const res = await api('POST', '/auth/login', { body })
    t.equal(res.status, 401, why)
    t.same(cookiesOf(res), {}, `${why}: no cookie`)
    answers.push(res.body)
  }
  t.same(answers[0], { statusCode: 401, error: 'Unauthorized', code: 'invalid_credentials', message: 'Email or password is incorrect' })
  t.same(answers[1], answers[0], 'wrong password answers as unknown email')
  t.same(answers[2], answers[0], 'disabled account answers as unknown email')
  t.equal(await sessionCount(), sessionsBefore, 'no session was opened')
})

test('a malformed sign-in body is a 400 JSON error and changes nothing', async (t) => {
  const sessionsBefore = await sessionCount()
  const cases: Array<[string, unknown]> = [
    ['no body', undefined],
    ['empty object', {}],
    ['missing password', { email: ADMIN.email }],
    ['missing email', { password: ADMIN.password }],
    ['extra property', { email: ADMIN.email, password: ADMIN.password, role: 'ADMIN' }],
    ['email of wrong type', { email: { $ne: '' }, password: ADMIN.password }],
    ['email as an array', { email: [ADMIN.email], password: ADMIN.password }],
    ['password as a number', { email: ADMIN.email, password: 12345678 }],
    ['password null', { email: ADMIN.email, password: null }],
    ['empty password', { email: ADMIN.email, password: '' }],
    ['email too long', { email: `${'a'.repeat(250)}@nexa.test`, password: ADMIN.password }],
    ['array body', [{ email: ADMIN.email, password: ADMIN.password }]],
  ]
  for (const [why, body] of cases) {
    const res = await api('POST', '/auth/login', { body })
    t.equal(res.status, 400, why)
    t.match(res.body, { statusCode: 400, error: 'Bad Request', code: 'invalid_request', message: String }, `${why}: JSON error`)
    t.same(cookiesOf(res), {}, `${why}: no cookie`)
  }
  const notJson = await request(`${stack.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":' })
  t.equal(notJson.statusCode, 400, 'broken JSON')
  t.match(await notJson.body.json(), { statusCode: 400, code: String, message: String })
  t.equal(await sessionCount(), sessionsBefore, 'no session was opened')
})

test('GET /auth/me accepts the Bearer header or the session cookie alone', async (t) => {
  const tokens = await login()
  const byHeader = await me(tokens.access_token)
  t.equal(byHeader.status, 200)
  t.same(byHeader.body, tokens.user)
  const byCookie = await api('GET', '/auth/me', { headers: { cookie: `nexa_session=${tokens.access_token}` } })
  t.equal(byCookie.status, 200)
  t.same(byCookie.body, tokens.user)
  const lowercase = await api('GET', '/auth/me', { headers: { authorization: `bearer ${tokens.access_token}` } })
  t.equal(lowercase.status, 200, 'the scheme name is case-insensitive')
  const both = await api('GET', '/auth/me', { headers: { authorization: 'Bearer not.a.jwt', cookie: `nexa_session=${tokens.access_token}` } })
  t.equal(both.status, 401, 'a bad Authorization header is not rescued by a good cookie')
})

test('GET /auth/me refuses missing, malformed, forged, expired and stream tokens', async (t) => {
  const tokens = await login()
  const secret = stack.app.config.auth.jwtSecret
  const claims = claimsOf(tokens.access_token)
  t.match(claims, { sub: tokens.user.id, sid: String, typ: 'access', iat: Number, exp: Number })

  const resigned = signJwt({ ...claims, iat: now(), exp: now() + 60 }, secret)
  t.equal((await me(resigned)).status, 200, 'control: a token signed here with the same claims is accepted')

  const stream = stack.app.tokens.stream({ ...tokens.user, role: 'ADMIN', sessionId: claims.sid as string }, '00000000-0000-4000-8000-000000000000')
  t.match(claimsOf(stream), { typ: 'stream', job: String })
  const [header, payload] = tokens.access_token.split('.')
  const refusals: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['empty Bearer', { authorization: 'Bearer ' }],
    ['not Bearer', { authorization: `Basic ${Buffer.from(`${ADMIN.email}:${ADMIN.password}`).toString('base64')}` }],
    ['token without scheme', { authorization: tokens.access_token }],
    ['garbage token', { authorization: 'Bearer not.a.jwt' }],
    ['garbage cookie', { cookie: 'nexa_session=garbage' }],
    ['tampered payload', { authorization: `Bearer ${header}.${b64({ ...claims, sub: '00000000-0000-4000-8000-000000000000' })}.${tokens.access_token.split('.')[2]}` }],
    ['signed with another secret', { authorization: `Bearer ${signJwt({ ...claims, exp: now() + 60 }, 'another-secret-that-is-also-long-enough-0123456789')}` }],
    ['alg none', { authorization: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${payload}.` }],
    ['HS512 with the right secret', { authorization: `Bearer ${signJwt({ ...claims, exp: now() + 60 }, secret, 'HS512')}` }],
    ['expired', { authorization: `Bearer ${signJwt({ ...claims, iat: now() - 1000, exp: now() - 100 }, secret)}` }],
    ['no expiry', { authorization: `Bearer ${signJwt({ sub: claims.sub, sid: claims.sid, typ: 'access', iat: now() }, secret)}` }],
    ['stream token as Bearer', { authorization: `Bearer ${stream}` }],
    ['stream token as cookie', { cookie: `nexa_session=${stream}` }],
  ]
  for (const [why, headers] of refusals) {
    const res = await api('GET', '/auth/me', { headers })
    t.equal(res.status, 401, why)
    t.match(res.body, unauthorized, `${why}: JSON error`)
  }
  t.equal((await me(tokens.access_token)).status, 200, 'the real token still works')
})

test('refresh with the token in the body rotates it; reusing a rotated token ends the whole session', async (t) => {
  const first = await login()
  const other = await login() // another session of the same user, which must survive

  const second = await api('POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } })
  t.equal(second.status, 200)
  t.equal(second.body.token_type, 'Bearer')
  t.equal(second.body.expires_in, 900)
  t.same(second.body.user, first.user)
  t.not(second.body.refresh_token, first.refresh_token, 'a new refresh token')
  t.equal(second.headers['cache-control'], 'no-store')
  const cookies = cookiesOf(second)
  t.equal(cookies.nexa_session?.value, second.body.access_token)
  t.equal(cookies.nexa_refresh?.value, second.body.refresh_token)
  t.equal((await me(second.body.access_token)).status, 200, 'the new access token works')

  const third = await api('POST', '/auth/refresh', { body: { refresh_token: second.body.refresh_token } })
  t.equal(third.status, 200, 'the new refresh token rotates in turn')

  // The first token was already exchanged: a thief or a replay. The family dies.
  const reuse = await api('POST', '/auth/refresh', { body: { refresh_token: first.refresh_token } })
  t.equal(reuse.status, 401)
  t.match(reuse.body, { ...invalidRefresh, message: /already used/ })
  cleared(t, reuse)

  const newest = await api('POST', '/auth/refresh', { body: { refresh_token: third.body.refresh_token } })
  t.equal(newest.status, 401, 'the newest refresh token of the family is refused')
  t.match(newest.body, invalidRefresh)
  for (const [why, token] of [['first', first.access_token], ['second', second.body.access_token], ['third', third.body.access_token]]) {
    const res = await me(token!)
    t.equal(res.status, 401, `the ${why} access token of the session is refused at once`)
    t.match(res.body, unauthorized)
  }
  const { rows } = await stack.db.query('SELECT revoked_reason FROM sessions WHERE id = $1', [claimsOf(first.access_token).sid])
  t.equal(rows[0].revoked_reason, 'refresh_reuse')

  t.equal((await me(other.access_token)).status, 200, 'another session of the same user goes on')
  t.equal((await api('POST', '/auth/refresh', { body: { refresh_token: other.refresh_token } })).status, 200)
})

test('refresh with the nexa_refresh cookie alone (no body), as a browser does', async (t) => {
  const tokens = await login()
  const res = await api('POST', '/auth/refresh', { headers: { cookie: `nexa_refresh=${tokens.refresh_token}` } })
  t.equal(res.status, 200)
  t.same(res.body.user, tokens.user)
  const cookies = cookiesOf(res)
  t.equal(cookies.nexa_refresh?.value, res.body.refresh_token, 'the rotated refresh token comes back as a cookie')
  t.match(cookies.nexa_refresh?.attributes, { httponly: true, samesite: 'Strict', path: '/auth' })
  t.equal(cookies.nexa_session?.value, res.body.access_token)

  const again = await api('POST', '/auth/refresh', { headers: { cookie: `nexa_refresh=${cookies.nexa_refresh!.value}` } })
  t.equal(again.status, 200, 'the cookie it set works for the next refresh')
  const old = await api('POST', '/auth/refresh', { headers: { cookie: `nexa_refresh=${tokens.refresh_token}` } })
  t.equal(old.status, 401, 'the old cookie is refused')
  t.match(old.body, invalidRefresh)
  t.equal((await me(again.body.access_token)).status, 401, 'and its reuse ended the session')
})

test('refresh refuses missing, unknown and malformed refresh tokens', async (t) => {
  const none = await api('POST', '/auth/refresh')
  t.equal(none.status, 401, 'no token at all')
  t.match(none.body, unauthorized)
  const unknown = await api('POST', '/auth/refresh', { body: { refresh_token: 'x'.repeat(43) } })
  t.equal(unknown.status, 401, 'unknown token')
  t.match(unknown.body, { ...invalidRefresh, message: /invalid or expired/ })
  cleared(t, unknown)
  const tokens = await login()
  const accessAsRefresh = await api('POST', '/auth/refresh', { body: { refresh_token: tokens.access_token } })
  t.equal(accessAsRefresh.status, 400, 'an access token is not a refresh token (too long)')
  for (const [why, body] of [
    ['too short', { refresh_token: 'short' }],
    ['wrong type', { refresh_token: 12345678901234567890 }],
    ['extra property', { refresh_token: tokens.refresh_token, role: 'ADMIN' }],
  ] as const) {
    const res = await api('POST', '/auth/refresh', { body })
    t.equal(res.status, 400, why)
    t.match(res.body, { statusCode: 400, code: 'invalid_request', message: String })
  }
  t.equal((await api('POST', '/auth/refresh', { body: { refresh_token: tokens.refresh_token } })).status, 200, 'the refused attempts did not spend the token')
})

test('logout by access token ends the session at once and clears the cookies', async (t) => {
  const tokens = await login()
  const other = await login()
  const res = await api('POST', '/auth/logout', { token: tokens.access_token })
  t.equal(res.status, 204)
  t.equal(res.body, null, 'no body')
  cleared(t, res)
  t.match((await me(tokens.access_token)).body, unauthorized, 'the access token is refused')
  t.equal((await me(tokens.access_token)).status, 401)
  const refresh = await api('POST', '/auth/refresh', { body: { refresh_token: tokens.refresh_token } })
  t.equal(refresh.status, 401, 'the refresh token is refused')
  t.match(refresh.body, invalidRefresh)
  t.equal((await me(other.access_token)).status, 200, 'another session of the same user goes on')
  t.equal((await api('POST', '/auth/logout', { token: tokens.access_token })).status, 401, 'a second logout with the dead token is refused')
})

test('logout by refresh token (body or cookie) ends the session at once', async (t) => {
  const byBody = await login()
  const res = await api('POST', '/auth/logout', { body: { refresh_token: byBody.refresh_token } })
  t.equal(res.status, 204)
  cleared(t, res)
  t.equal((await me(byBody.access_token)).status, 401, 'the access token is refused')
  t.equal((await api('POST', '/auth/refresh', { body: { refresh_token: byBody.refresh_token } })).status, 401, 'the refresh token is refused')

  const byCookie = await login()
  const browser = await api('POST', '/auth/logout', { headers: { cookie: `nexa_session=${byCookie.access_token}; nexa_refresh=${byCookie.refresh_token}` } })
  t.equal(browser.status, 204, 'a browser signs out with its cookies alone')
  cleared(t, browser)
  t.equal((await me(byCookie.access_token)).status, 401)
  t.equal((await api('POST', '/auth/refresh', { headers: { cookie: `nexa_refresh=${byCookie.refresh_token}` } })).status, 401)

  const anonymous = await api('POST', '/auth/logout')
  t.equal(anonymous.status, 401, 'logout without any token')
  t.match(anonymous.body, unauthorized)
  const bogus = await api('POST', '/auth/logout', { body: { refresh_token: 'y'.repeat(43) } })
  t.equal(bogus.status, 401, 'logout with an unknown refresh token and no access token')
})

test('the first admin is bootstrapped once: a second gateway on the same database neither fails nor duplicates it', async (t) => {
  const count = async () => Number((await stack.db.query('SELECT count(*) FROM users WHERE email = $1', [ADMIN.email])).rows[0].count)
  t.equal(await count(), 1)
  const { rows: [before] } = await stack.db.query('SELECT id, password_hash, role FROM users WHERE email = $1', [ADMIN.email])
  // (Same login limits: both instances count sign-in attempts together in Redis.)
  const second = await startStack(services, { env: NO_LOGIN_LIMITS, databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl })
  t.teardown(() => second.close())
  t.equal(await count(), 1, 'still exactly one admin with that email')
  const { rows: [after] } = await stack.db.query('SELECT id, password_hash, role FROM users WHERE email = $1', [ADMIN.email])
  t.same(after, before, 'the admin was left as it was')
  const res = await second.api('POST', '/auth/login', { body: { email: ADMIN.email, password: ADMIN.password } })
  t.equal(res.status, 200, 'the admin signs in on the second gateway')
  t.equal(res.body.user.role, 'ADMIN')
  t.equal((await me(res.body.access_token)).status, 200, 'and its token works on the first one (same secret, same database)')
})

test('passwords are stored as salted scrypt hashes (N=131072, r=8, p=1), never in clear', async (t) => {
  await stack.createUser('twin-a@nexa.test', 'the-same-password-1')
  await stack.createUser('twin-b@nexa.test', 'the-same-password-1')
  const { rows } = await stack.db.query('SELECT email, password_hash FROM users ORDER BY email')
  t.ok(rows.length >= 3)
  for (const row of rows) {
    t.match(row.password_hash, /^scrypt\$131072\$8\$1\$[\w-]{22}\$[\w-]{86}$/, `${row.email}: scrypt$N$r$p$salt$key`)
  }
  const hashes = Object.fromEntries(rows.map((r) => [r.email, r.password_hash as string]))
  t.not(hashes['twin-a@nexa.test'], hashes['twin-b@nexa.test'], 'the same password gives different hashes (salted)')
  for (const clear of [ADMIN.password, 'the-same-password-1']) {
    const { rows: found } = await stack.db.query(`SELECT 1 FROM users u WHERE row_to_json(u)::text LIKE '%' || $1 || '%'`, [clear])
    t.equal(found.length, 0, 'the clear password is nowhere in the users table')
  }
  t.equal((await api('POST', '/auth/login', { body: { email: 'twin-b@nexa.test', password: 'the-same-password-1' } })).status, 200, 'and it verifies')
})

import t0, { type Test } from 'tap'
import fc from 'fast-check'
import { request } from 'undici'
import { Redis } from 'ioredis'
import { startServices, startStack, eventually, type Stack, retryingOn503 } from '../helpers/stack.js'
import { simplePdf } from '../pdf/fixtures.js'
import { parseAiMessage } from '../../src/services/ai/messages.js'
import { NO_LOGIN_LIMITS, signJwt, signIn } from './support.js'

// Property-based fuzzing (fast-check, fixed seed): thousands of generated and malformed requests to
// every route, as anonymous, user and admin, and thousands of generated messages to the AI message
// handler (the parser, then live through Redis on real job channels). Whatever comes in: no 5xx,
// every refusal is the API's JSON error without internals, the process stays up, and afterwards
// the database invariants hold: one accepted classification per part number, no orphan rows, and
// every finished job has exactly one final event.

const { test } = t0
const SEED = 20_240_917
const services = await startServices()
const stack: Stack = await startStack(services, {
  simulator: { steps: 1, stepMs: 2 },
  env: {
    ...NO_LOGIN_LIMITS,
    RATE_LIMIT_MAX: '1000000', RATE_LIMIT_USER_MAX: '1000000', USER_MAX_ACTIVE_JOBS: '100000',
    BATCH_MAX_ITEMS: '20', JOB_DEADLINE: '15s', JOB_SWEEP_INTERVAL: '1s',
  },
})
const publisher = new Redis(services.redis.url)
t0.teardown(async () => { publisher.disconnect(); await stack.close(); await services.stop() })

const admin = await stack.login()
const alice = await stack.createUser('alice@nexa.test')
const target = await stack.createUser('fuzz-target@nexa.test')
const adminId: string = (await stack.db.query(`SELECT id FROM users WHERE role = 'ADMIN'`)).rows[0].id
const tokens = { none: undefined, alice: alice.token, admin } as const

// Real objects, so that some generated ids hit something.
// (Set-up requests try again while a busy gateway sheds load, as a client does.)
const started = await retryingOn503(() => stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'BC847BLT1G' } }))
if (started.status !== 202) throw new Error(`the fixture job did not start: ${started.status} ${JSON.stringify(started.body)}`)
const finishedJob = await eventually(async () => {
  const job = await stack.api('GET', `/jobs/${started.body.id}`, { token: alice.token })
  if (job.body.status === 'FAILED') throw new Error(`the fixture job failed: ${job.body.error}`)
  return job.body.status === 'DONE' ? job.body : undefined
}, 60_000)
const pdf = await simplePdf(1)
const upload = new FormData()
upload.append('file', new Blob([new Uint8Array(pdf)]), 'po.pdf')
const doc = await (await fetch(`${stack.url}/documents`, { method: 'POST', headers: { authorization: `Bearer ${alice.token}` }, body: upload })).json() as any
const KNOWN_IDS = [finishedJob.id, finishedJob.result.id, doc.document_id, alice.id, target.id, adminId, '00000000-0000-4000-8000-000000000000']

// ---------------------------------------------------------------------------------------------
// Arbitraries

const NASTY = ['', ' ', '\u0000', 'a\u0000b', '\u0007\u001b[31m', '\ud800', '\uffff', '💥', 'é'.normalize('NFD'), "' OR '1'='1' --", '"; DROP TABLE jobs; --',
  '../../etc/passwd', '..%2f..%2f', '%00', '%', '<script>alert(1)</script>', '${7*7}', '{{7*7}}', '__proto__', 'constructor', 'null', 'undefined', 'NaN',
  '-1', '0', '1e309', 'A'.repeat(101), 'A'.repeat(2001), 'x'.repeat(10_000), '\r\nX-Injected: 1', 'admin@nexa.test', 'ADMIN', 'bc847blt1g']
const text = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.constantFrom(...NASTY) },
)
const anyValue = fc.oneof({ weight: 4, arbitrary: text }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) })
const idLike = fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...KNOWN_IDS) }, { weight: 2, arbitrary: fc.uuid() }, { weight: 3, arbitrary: text })
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined })
const withExtras = <T extends object>(arb: fc.Arbitrary<T>) => fc.tuple(arb, fc.option(fc.dictionary(fc.constantFrom('owner_id', 'role', 'status', 'id', '__proto__', 'x'), anyValue, { maxKeys: 2 }), { freq: 4, nil: undefined }))
  .map(([value, extras]) => (extras ? { ...extras, ...value } : value))

function encode(value: string): string {
  try {
    return encodeURIComponent(value)
  } catch {
    return '%ED%A0%80' // a lone surrogate cannot be encoded: send its bytes as they would arrive
  }
}
const segment = idLike.map(encode)
const query = (keys: string[]) => fc.array(fc.tuple(fc.oneof(fc.constantFrom(...keys), fc.string({ maxLength: 8 })), fc.oneof(anyValue.map(String), fc.integer().map(String), fc.date({ noInvalidDate: true }).map((d) => d.toISOString()), fc.base64String({ maxLength: 80 }))), { maxLength: 5 })
  .map((pairs) => (pairs.length ? `?${pairs.map(([k, v]) => `${encode(k)}=${encode(v)}`).join('&')}` : ''))

interface Body { text?: string | Buffer; type?: string }
const CONTENT_TYPES = ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data', 'multipart/form-data; boundary=x',
  'application/json; charset=utf-16', 'application/json; charset=latin1', 'application/jsonx', 'application/json, text/plain', '*/*']
/** A body shaped like `shape` most of the time; otherwise any JSON, broken JSON, another content type, or none. */
const bodyOf = (shape: fc.Arbitrary<unknown>): fc.Arbitrary<Body> => fc.oneof(
  { weight: 6, arbitrary: shape.map((v) => ({ text: JSON.stringify(v), type: 'application/json' })) },
  { weight: 2, arbitrary: fc.jsonValue().map((v) => ({ text: JSON.stringify(v), type: 'application/json' })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }).map((s) => ({ text: s, type: 'application/json' })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...CONTENT_TYPES), fc.string({ maxLength: 100 })).map(([type, s]) => ({ text: s, type })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ text: Buffer.from(bytes), type: 'application/json' })) },
  { weight: 1, arbitrary: fc.constant({}) },
)
const who = fc.constantFrom<keyof typeof tokens>('none', 'alice', 'admin')

// ---------------------------------------------------------------------------------------------
// One request, and what every answer must look like

const INTERNALS = /\bat .+:\d+:\d+|node_modules|\.ts:\d|password_hash|relation "|syntax error|invalid input syntax|duplicate key|violates/i
let sent = 0

async function call(method: string, path: string, options: { token?: string; body?: Body; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token) headers.authorization = `Bearer ${options.token}`
  if (options.body?.type) headers['content-type'] = options.body.type
  for (let attempt = 1; ; attempt++) {
    let response
    try {
      response = await request(`${stack.url}${path}`, { method: method as 'GET', headers, body: options.body?.text, signal: AbortSignal.timeout(30_000) })
    } catch (err) {
      // The client refused to send it (a header or path no HTTP client can put on the wire): nothing to check.
      if (/invalid|Invalid|ERR_INVALID|TypeError/.test(`${(err as Error).name} ${(err as Error).message} ${(err as { code?: string }).code}`)) return { status: 0, body: '' }
      throw err
    }
    sent++
    // An event stream of a live job would not end by itself: its first bytes are enough.
    const isStream = String(response.headers['content-type'] ?? '').startsWith('text/event-stream')
    const body = isStream ? '' : await response.body.text()
    if (isStream) response.body.on('error', () => {}).destroy()
    // A busy machine can make the gateway shed load whatever the input (503 with Retry-After, the
    // database busy or slow to connect): a client tries again, and the answer then is what is checked.
    const shed = response.statusCode === 503 && /"code":"database_(busy|unavailable)"/.test(body) && response.headers['retry-after'] !== undefined
    if (!shed || attempt === 5) return { status: response.statusCode, body }
    await new Promise((r) => setTimeout(r, 1_000 * Math.min(Number(response.headers['retry-after']) || 1, 5)))
  }
}

function expectSane(what: string, method: string, res: { status: number; body: string }): true {
  if (res.status === 0) return true
  if (res.status >= 500) throw new Error(`${what}: ${res.status} ${res.body.slice(0, 300)}`)
  if (res.status >= 400 && method !== 'HEAD') {
    let parsed: any
    try {
      parsed = JSON.parse(res.body)
    } catch {
      throw new Error(`${what}: ${res.status} with a body that is not JSON: ${res.body.slice(0, 200)}`)
    }
    if (parsed.statusCode !== res.status || typeof parsed.code !== 'string' || typeof parsed.message !== 'string') {
      throw new Error(`${what}: ${res.status} not in the error shape: ${res.body.slice(0, 200)}`)
    }
    if (INTERNALS.test(res.body)) throw new Error(`${what}: ${res.status} shows internals: ${res.body.slice(0, 300)}`)
  }
  return true
}

const runs: Record<string, number> = {}
async function fuzz<T>(name: string, numRuns: number, arbitrary: fc.Arbitrary<T>, send: (value: T) => Promise<{ method: string; res: { status: number; body: string } }>) {
  const before = sent
  await fc.assert(fc.asyncProperty(arbitrary, async (value) => {
    const { method, res } = await send(value)
    return expectSane(name, method, res)
  }), { seed: SEED, numRuns, endOnFailure: true })
  runs[name] = sent - before
}

// ---------------------------------------------------------------------------------------------
// Database invariants

async function invariants() {
  const { rows: [r] } = await stack.db.query(`SELECT
    (SELECT count(*)::int FROM (SELECT partnumber_id FROM classifications WHERE status = 'ACTIVE' GROUP BY 1 HAVING count(*) > 1) x) AS two_accepted,
    (SELECT count(*)::int FROM job_events e WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = e.job_id)) AS orphan_events,
    (SELECT count(*)::int FROM job_items i WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = i.job_id)) AS orphan_items,
    (SELECT count(*)::int FROM job_chunks c WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id)) AS orphan_chunks,
    (SELECT count(*)::int FROM classifications c WHERE c.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id)) AS orphan_classifications,
    (SELECT count(*)::int FROM classifications c WHERE NOT EXISTS (SELECT 1 FROM partnumbers p WHERE p.id = c.partnumber_id)) AS classifications_without_partnumber,
    (SELECT count(*)::int FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = j.owner_id)) AS jobs_without_owner,
    (SELECT count(*)::int FROM documents d WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = d.owner_id)) AS documents_without_owner,
    (SELECT count(*)::int FROM jobs j WHERE j.document_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = j.document_id)) AS jobs_without_document,
    (SELECT count(*)::int FROM jobs j WHERE j.classification_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM classifications c WHERE c.id = j.classification_id)) AS jobs_without_classification,
    (SELECT count(*)::int FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id)) AS orphan_sessions,
    (SELECT count(*)::int FROM refresh_tokens t WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id = t.session_id)) AS orphan_refresh_tokens,
    (SELECT count(*)::int FROM jobs j WHERE j.status IN ('DONE', 'FAILED')
       AND (SELECT count(*) FROM job_events e WHERE e.job_id = j.id AND e.attempt = j.attempt AND e.final) <> 1) AS finished_without_one_final,
    (SELECT count(*)::int FROM jobs j WHERE j.status NOT IN ('DONE', 'FAILED')
       AND EXISTS (SELECT 1 FROM job_events e WHERE e.job_id = j.id AND e.attempt = j.attempt AND e.final)) AS live_with_final,
    (SELECT count(*)::int FROM jobs j WHERE j.kind = 'SINGLE' AND j.status = 'DONE' AND j.classification_id IS NULL) AS done_without_result,
    (SELECT count(*)::int FROM job_items i JOIN jobs j ON j.id = i.job_id WHERE j.status IN ('DONE', 'FAILED') AND i.status = 'PENDING') AS finished_batch_with_pending_items`)
  return r as Record<string, number>
}
async function invariantsHold(t: Test, when: string) {
  const found = await invariants()
  t.same(found, Object.fromEntries(Object.keys(found).map((k) => [k, 0])), `database invariants hold ${when}`)
}

async function settle() {
  await eventually(async () => (await stack.db.query(`SELECT count(*)::int AS n FROM jobs WHERE status IN ('QUEUED', 'RUNNING')`)).rows[0].n === 0, 40_000, 200)
}

// ---------------------------------------------------------------------------------------------

test('accounts: sign-in, refresh, sign-out, me (malformed bodies, cookies and tokens)', async (t) => {
  // Malformed sign-in bodies are refused before any password hashing; a bounded number of
  // well-formed ones (each costs a real scrypt) go through to the database.
  const badLogin = fc.oneof(
    fc.record({ email: fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(text, { maxLength: 2 }), fc.object({ maxDepth: 1 })), password: anyValue }, { requiredKeys: [] }),
    fc.record({ email: text, password: fc.oneof(fc.integer(), fc.constant(null), fc.constant(''), fc.array(text, { maxLength: 2 })) }, { requiredKeys: [] }),
    fc.record({ email: fc.string({ maxLength: 2 }), password: text }),
    fc.record({ email: text, password: text, role: anyValue }),
    fc.jsonValue({ maxDepth: 2 }).filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
  )
  await fuzz('POST /auth/login (malformed)', 300, bodyOf(badLogin), async (body) => ({ method: 'POST', res: await call('POST', '/auth/login', { body }) }))
  await fuzz('POST /auth/login (well-formed)', 5, fc.record({ email: fc.oneof(text, fc.emailAddress()).filter((e) => e.length >= 3 && e.length <= 254), password: text.filter((p) => p.length >= 1 && p.length <= 256) }),
    async (creds) => ({ method: 'POST', res: await call('POST', '/auth/login', { body: { text: JSON.stringify(creds), type: 'application/json' } }) }))
  const refreshBody = withExtras(fc.record({ refresh_token: fc.oneof(anyValue, fc.string({ minLength: 20, maxLength: 200 }), fc.base64String({ minLength: 20, maxLength: 200 })) }, { requiredKeys: [] }))
  await fuzz('POST /auth/refresh', 250, fc.tuple(bodyOf(refreshBody), fc.option(fc.stringMatching(/^[\x21-\x7e]{0,80}$/), { nil: undefined })),
    async ([body, cookie]) => ({ method: 'POST', res: await call('POST', '/auth/refresh', { body, headers: cookie === undefined ? {} : { cookie: `nexa_refresh=${cookie}` } }) }))
  await fuzz('POST /auth/logout (anonymous)', 200, bodyOf(refreshBody), async (body) => ({ method: 'POST', res: await call('POST', '/auth/logout', { body }) }))

  // Authorization headers and cookies of every shape; tokens signed with the real secret but odd claims.
  const secret = stack.app.config.auth.jwtSecret
  const now = Math.floor(Date.now() / 1000)
  const claims = fc.record({ sub: anyValue, sid: anyValue, typ: fc.oneof(fc.constantFrom('access', 'stream'), anyValue), exp: fc.oneof(fc.constant(now + 600), fc.integer(), fc.double(), anyValue), iat: fc.oneof(fc.constant(now), anyValue), job: anyValue }, { requiredKeys: [] })
  const authorization = fc.oneof(
    fc.stringMatching(/^[\x20-\x7e]{0,120}$/),
    fc.tuple(fc.constantFrom('Bearer ', 'bearer ', 'BEARER  ', 'Basic ', 'Bearer\t', ''), fc.stringMatching(/^[A-Za-z0-9._~+/=-]{0,200}$/)).map(([s, v]) => `${s}${v}`),
    claims.map((c) => `Bearer ${signJwt(c as Record<string, unknown>, secret)}`),
  )
  await fuzz('GET /auth/me (headers)', 300, fc.tuple(authorization, fc.option(fc.stringMatching(/^[\x21-\x3a\x3c-\x7e]{0,200}$/), { nil: undefined })),
    async ([auth, cookie]) => ({ method: 'GET', res: await call('GET', '/auth/me', { headers: { authorization: auth, ...(cookie === undefined ? {} : { cookie: `nexa_session=${cookie}` }) } }) }))
  await invariantsHold(t, 'after the account routes')
})

test('classifications: single, batch and review, as anonymous, user and admin', async (t) => {
  const item = withExtras(fc.record({ partnumber: anyValue, description: optional(fc.oneof(anyValue, fc.constant(null))), manufacturer: optional(anyValue), supplier: optional(anyValue) }, { requiredKeys: ['partnumber'] }))
  const single = withExtras(fc.record({ partnumber: anyValue, description: anyValue, manufacturer: anyValue, supplier: anyValue, reclassify: fc.oneof(fc.boolean(), anyValue) }, { requiredKeys: ['partnumber'] }))
  await fuzz('POST /classifications', 300, fc.tuple(who, bodyOf(single)), async ([user, body]) => ({ method: 'POST', res: await call('POST', '/classifications', { token: tokens[user], body }) }))
  const batch = fc.oneof(
    fc.record({ partnumbers: fc.oneof(fc.array(item, { maxLength: 6 }), anyValue), reclassify: fc.oneof(fc.boolean(), anyValue) }, { requiredKeys: ['partnumbers'] }),
    withExtras(fc.record({ document_id: idLike, partnumbers: fc.oneof(fc.array(anyValue, { maxLength: 4 }), anyValue), reclassify: fc.boolean() }, { requiredKeys: ['document_id'] })),
  )
  await fuzz('POST /classifications/batch', 200, fc.tuple(who, bodyOf(batch)), async ([user, body]) => ({ method: 'POST', res: await call('POST', '/classifications/batch', { token: tokens[user], body }) }))
  const review = withExtras(fc.record({ status: fc.oneof(fc.constantFrom('ACTIVE', 'REJECTED', 'REPLACED', 'active', ''), anyValue) }, { requiredKeys: [] }))
  await fuzz('PATCH /classifications/:id', 200, fc.tuple(who, segment, bodyOf(review)), async ([user, id, body]) => ({ method: 'PATCH', res: await call('PATCH', `/classifications/${id}`, { token: tokens[user], body }) }))
  await settle()
  await invariantsHold(t, 'after the classification routes')
})

test('jobs, results, event streams, part numbers: ids, queries and headers', async (t) => {
  const jobQuery = query(['status', 'kind', 'partnumber', 'from', 'to', 'limit', 'cursor', 'owner_id'])
  await fuzz('GET /jobs', 300, fc.tuple(who, jobQuery), async ([user, q]) => ({ method: 'GET', res: await call('GET', `/jobs${q}`, { token: tokens[user] }) }))
  const idRoute = fc.constantFrom(['GET', ''], ['GET', '/results.csv'], ['GET', '/results.json'], ['POST', '/retry'], ['DELETE', ''], ['PUT', ''])
  await fuzz('GET|POST /jobs/:id[/results.csv|.json|/retry]', 300, fc.tuple(who, idRoute, segment, query(['token', 'format'])),
    async ([user, [method, suffix], id, q]) => ({ method, res: await call(method, `/jobs/${id}${suffix}${q}`, { token: tokens[user] }) }))
  const lastEventId = fc.option(fc.oneof(fc.stringMatching(/^[\x20-\x7e]{0,30}$/), fc.integer().map(String), fc.constant('99999999999999999999')), { nil: undefined })
  await fuzz('GET /jobs/:id/events', 200, fc.tuple(who, segment, query(['token']), lastEventId),
    async ([user, id, q, last]) => ({ method: 'GET', res: await call('GET', `/jobs/${id}/events${q}`, { token: tokens[user], headers: last === undefined ? {} : { 'last-event-id': last } }) }))
  await fuzz('GET /partnumbers', 200, fc.tuple(who, query(['q', 'limit', 'after'])), async ([user, q]) => ({ method: 'GET', res: await call('GET', `/partnumbers${q}`, { token: tokens[user] }) }))
  await fuzz('GET /partnumbers/:code', 200, fc.tuple(who, segment), async ([user, code]) => ({ method: 'GET', res: await call('GET', `/partnumbers/${code}`, { token: tokens[user] }) }))
  await invariantsHold(t, 'after the job routes')
})

test('documents: uploads of random bytes, broken and altered PDFs, odd names and fields', async (t) => {
  const content = fc.oneof(
    fc.uint8Array({ maxLength: 4096 }).map((b) => Buffer.from(b)),
    fc.uint8Array({ maxLength: 2048 }).map((b) => Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.from(b)])),
    fc.nat(pdf.length).map((n) => pdf.subarray(0, n)),
    fc.tuple(fc.nat(pdf.length - 1), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([at, b]) => Buffer.concat([pdf.subarray(0, at), Buffer.from(b), pdf.subarray(at)])),
    fc.constant(pdf),
  )
  const form = fc.record({ field: fc.oneof(fc.constantFrom('file', 'pedido'), fc.string({ maxLength: 10 })), filename: fc.oneof(text, fc.constantFrom('../../etc/passwd', 'a\u0000.pdf', 'C:\\x\\y.pdf', '')), content, classify: fc.option(fc.constantFrom('true', 'false', '1', 'yes', ''), { nil: undefined }) })
  await fuzz('POST /documents', 150, fc.tuple(fc.constantFrom<keyof typeof tokens>('alice', 'admin', 'none'), form), async ([user, f]) => {
    const body = new FormData()
    body.append(f.field || 'file', new Blob([new Uint8Array(f.content)], { type: 'application/pdf' }), f.filename)
    const headers: Record<string, string> = tokens[user] ? { authorization: `Bearer ${tokens[user]}` } : {}
    const response = await fetch(`${stack.url}/documents${f.classify === undefined ? '' : `?classify=${f.classify}`}`, { method: 'POST', headers, body, signal: AbortSignal.timeout(30_000) })
    sent++
    return { method: 'POST', res: { status: response.status, body: await response.text() } }
  })
  await fuzz('GET /documents[/:id]', 200, fc.tuple(who, fc.option(segment, { nil: undefined }), query(['limit', 'cursor'])),
    async ([user, id, q]) => ({ method: 'GET', res: await call('GET', `/documents${id === undefined ? '' : `/${id}`}${q}`, { token: tokens[user] }) }))
  await settle()
  await invariantsHold(t, 'after the uploads')
})

test('users (admin routes) and every other method and path', async (t) => {
  const newUser = withExtras(fc.record({ email: anyValue, password: anyValue, role: fc.oneof(fc.constantFrom('ADMIN', 'USER', 'admin', 'ROOT'), anyValue) }, { requiredKeys: [] }))
  await fuzz('POST /users', 200, fc.tuple(who, bodyOf(newUser)), async ([user, body]) => ({ method: 'POST', res: await call('POST', '/users', { token: tokens[user], body }) }))
  const change = withExtras(fc.record({ role: fc.oneof(fc.constantFrom('ADMIN', 'USER'), anyValue), disabled: fc.oneof(fc.boolean(), anyValue) }, { requiredKeys: [] }))
  // Never Alice (the fuzzing uses her session); the target user, the admin themself and random ids.
  const userId = fc.oneof(fc.constantFrom(target.id, adminId, '00000000-0000-4000-8000-000000000000'), fc.uuid(), text).map(encode)
  await fuzz('PATCH /users/:id', 200, fc.tuple(fc.constantFrom<keyof typeof tokens>('admin', 'alice', 'none'), userId, bodyOf(change)),
    async ([user, id, body]) => ({ method: 'PATCH', res: await call('PATCH', `/users/${id}`, { token: tokens[user], body }) }))
  await fuzz('GET /users', 200, fc.tuple(who, query(['limit', 'after'])), async ([user, q]) => ({ method: 'GET', res: await call('GET', `/users${q}`, { token: tokens[user] }) }))
  const method = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD')
  const path = fc.array(fc.oneof(fc.constantFrom('auth', 'login', 'users', 'jobs', 'events', 'classifications', 'batch', 'documents', 'partnumbers', 'docs', 'json', 'metrics', 'health', 'ready', '..', '.', '%2e%2e', '%00', ''), segment), { minLength: 1, maxLength: 4 })
    .map((parts) => `/${parts.join('/')}`)
  await fuzz('any method, any path', 400, fc.tuple(method, path, who, fc.option(bodyOf(fc.jsonValue()), { nil: undefined })), async ([m, p, user, body]) => ({
    method: m, res: await call(m, p, { token: tokens[user], body: m === 'GET' || m === 'HEAD' ? undefined : body }),
  }))
  t.equal((await stack.api('GET', '/auth/me', { token: alice.token })).status, 200, 'Alice\'s session survived')
  await invariantsHold(t, 'after the user routes and random paths')
})

// ---------------------------------------------------------------------------------------------
// The AI message handler

const count = fc.oneof({ weight: 4, arbitrary: fc.nat(10) }, { weight: 1, arbitrary: fc.oneof(fc.integer(), fc.double(), fc.constant(null), text, fc.constant(2_000_000)) })
const resultObject = fc.record({
  partnumber: fc.oneof(text, fc.constant(null)),
  ncm: fc.oneof(fc.constantFrom('85412120', '8541.21.20', '85322410', ' 8542 39 90 ', '12345678'), fc.stringMatching(/^\d{8}$/), text, fc.integer()),
  description: fc.oneof(text, fc.constant(null), fc.constant('d'.repeat(10_001))),
  exception: fc.oneof(fc.constantFrom('00', 'ex 01', '001', 'EX 999'), text, fc.integer()),
  nve: fc.oneof(text, fc.constant(null)),
  fabricante: fc.oneof(text, fc.constant(null), fc.integer()),
  endereco: fc.oneof(text, fc.constant(null)),
  pais: fc.oneof(text, fc.constant(null)),
  confidence_score: fc.oneof(fc.double(), fc.constantFrom(0, 0.5, 1, -1, 2), text),
}, { requiredKeys: [] })
const aiMessage = (partnumbers: string[]) => fc.oneof(
  fc.record({ status: fc.constant('processing'), progress: fc.oneof(fc.record({ current: count, total: count, message: fc.oneof(text, fc.constant(null), fc.integer()) }, { requiredKeys: [] }), anyValue) }, { requiredKeys: ['status'] }),
  fc.record({
    status: fc.constant('partial_result'), current: count, total: count, message: fc.oneof(text, fc.constant(null)),
    single_classification: fc.oneof(
      fc.tuple(resultObject, fc.constantFrom(...partnumbers, 'NOT-IN-THIS-JOB')).map(([r, pn]) => ({ ...r, partnumber: pn })),
      resultObject, anyValue, resultObject.map((r) => JSON.stringify(r)),
    ),
  }, { requiredKeys: ['status'] }),
  fc.record({ status: fc.constant('failed'), error: fc.oneof(text, fc.constant(null), fc.integer(), fc.constant('e'.repeat(5_000))) }, { requiredKeys: ['status'] }),
  fc.record({ status: fc.constant('done'), result: fc.oneof(resultObject, fc.constant(null), anyValue, fc.dictionary(fc.constantFrom(...partnumbers, 'OTHER'), resultObject, { maxKeys: 3 })) }, { requiredKeys: ['status'] }),
  fc.record({ status: fc.oneof(fc.constantFrom('PROCESSING', 'Done', 'started', ''), anyValue), progress: anyValue }),
  fc.jsonValue({ maxDepth: 3 }),
).chain((m) => fc.record({ job_id: fc.oneof(fc.constant(undefined), fc.constant(null), text, fc.integer(), fc.uuid()) }, { requiredKeys: [] })
  .map((extra) => (typeof m === 'object' && m !== null && !Array.isArray(m) ? { ...extra, ...m } : m)))
const rawMessage = (partnumbers: string[]) => fc.oneof(
  { weight: 8, arbitrary: aiMessage(partnumbers).map((m) => JSON.stringify(m) ?? 'undefined') },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', 'null', '[]', '"done"', '{"status":"done"', `{"status":"done","result":${'['.repeat(5_000)}`, `{"status":"processing","pad":"${'x'.repeat(1_100_000)}"}`) },
)

test('the AI message parser takes 5 000 generated messages without throwing', async (t) => {
  let accepted = 0
  fc.assert(fc.property(rawMessage(['BC847BLT1G', 'LM358N']), (raw) => {
    const parsed = parseAiMessage(raw)
    if (parsed.ok) {
      accepted++
      if (!Buffer.isBuffer(parsed.hash) || parsed.hash.length !== 32) return false
    } else if (typeof parsed.reason !== 'string' || parsed.reason.length === 0) return false
    return true
  }), { seed: SEED, numRuns: 5_000 })
  runs['parseAiMessage'] = 5_000
  t.ok(accepted > 500, `${accepted} of 5 000 were valid messages, the rest refused with a reason`)
})

test('live: generated messages on the channels of running single and batch jobs; every job still ends once', async (t) => {
  const singles: Array<{ id: string; channel: string; partnumber: string }> = []
  for (let i = 0; i < 12; i++) {
    const partnumber = `FUZZ-LIVE-${i}`
    await stack.scenario(partnumber, { outcome: 'silent', silentAfter: 0 })
    const res = await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber, reclassify: true } })
    t.equal(res.status, 202)
    singles.push({ id: res.body.id, partnumber, channel: (await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [res.body.id])).rows[0].channel })
  }
  const batches: Array<{ id: string; channels: string[]; partnumbers: string[]; own: string }> = []
  for (let i = 0; i < 4; i++) {
    const partnumbers = [`FUZZ-BATCH-${i}-A`, `FUZZ-BATCH-${i}-B`, `FUZZ-BATCH-${i}-C`]
    await stack.scenario(partnumbers[0]!, { stopAfterItems: 0 })
    const res = await stack.api('POST', '/classifications/batch', { token: alice.token, body: { partnumbers: partnumbers.map((partnumber) => ({ partnumber })), reclassify: true } })
    t.equal(res.status, 202)
    const channels = (await stack.db.query('SELECT channel FROM job_chunks WHERE job_id = $1', [res.body.id])).rows.map((r) => r.channel as string)
    const own: string = (await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [res.body.id])).rows[0].channel
    batches.push({ id: res.body.id, channels, partnumbers, own })
  }
  const targets = [
    ...singles.map((s) => ({ channel: s.channel, partnumbers: [s.partnumber] })),
    ...batches.flatMap((b) => [...b.channels.map((channel) => ({ channel, partnumbers: b.partnumbers })), { channel: b.own, partnumbers: b.partnumbers }]),
    { channel: 'progress-nobody-listens-here', partnumbers: ['X'] },
  ]
  let published = 0
  fc.assert(fc.property(fc.nat(targets.length - 1).chain((i) => fc.tuple(fc.constant(targets[i]!), rawMessage(targets[i]!.partnumbers))), ([where, raw]) => {
    void publisher.publish(where.channel, raw)
    published++
    return true
  }), { seed: SEED, numRuns: 800 })
  runs['AI messages through Redis'] = published
  await new Promise((r) => setTimeout(r, 1_500))
  t.same((await stack.api('GET', '/health')).body, { status: 'ok' }, 'the gateway is up')

  // Then each job gets a proper ending; those a generated message already ended stay as they are.
  const valid = { ncm: '85412120', description: 'ok', exception: '00', nve: null, fabricante: 'X', endereco: null, pais: null, confidence_score: 0.9 }
  for (const s of singles) await publisher.publish(s.channel, JSON.stringify({ job_id: s.id, status: 'done', result: { ...valid, partnumber: s.partnumber } }))
  for (const b of batches) {
    for (const channel of b.channels) {
      await publisher.publish(channel, JSON.stringify({ status: 'partial_result', current: 1, total: 3, message: 'ok', single_classification: { ...valid, partnumber: b.partnumbers[0] } }))
      await publisher.publish(channel, JSON.stringify({ status: 'done', result: null }))
    }
  }
  await settle()
  const { rows } = await stack.db.query(`SELECT status, count(*)::int AS n FROM jobs WHERE id = ANY($1) GROUP BY 1 ORDER BY 1`, [[...singles, ...batches].map((j) => j.id)])
  t.comment(`the fuzzed jobs ended: ${rows.map((r) => `${r.n} ${r.status}`).join(', ')}`)
  await invariantsHold(t, 'after the live messages')
  const stream = await call('GET', `/jobs/${singles[0]!.id}/events`, { token: alice.token })
  t.equal(stream.status, 200, 'a fuzzed job\'s stream still opens')
})

test('after everything: the process is up, ready, and the invariants hold', async (t) => {
  await settle()
  t.same((await stack.api('GET', '/ready')).body, { status: 'ready', database: 'ok', bus: 'ok' })
  await invariantsHold(t, 'at the end')
  const total = Object.values(runs).reduce((a, b) => a + b, 0)
  t.comment(`generated inputs per target: ${JSON.stringify(runs)}; ${total} in all (${sent} HTTP requests)`)
  t.ok(total >= 5_000, 'thousands of generated inputs')
  const session = await signIn(stack, 'alice@nexa.test', 'user-password-123')
  t.equal(session.user.role, 'USER', 'Alice is still a plain user: nothing generated changed a role')
})

// Text PostgreSQL cannot store (lone surrogates, NUL) is refused at the door, or cleaned before it is written.
test('text PostgreSQL cannot store: refused at the door, or cleaned before it is written', async (t) => {
  for (const [field, value] of [['description', '\ud800'], ['manufacturer', 'x\udc00y'], ['supplier', '\ud83d']] as const) {
    const res = await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: `SURROGATE-${field}`, [field]: value } })
    t.ok(res.status < 500, `classify with a lone surrogate in ${field}: ${res.status}`)
  }
  const batch = await stack.api('POST', '/classifications/batch', { token: alice.token, body: { partnumbers: [{ partnumber: 'SURROGATE-BATCH', description: '\udfff' }] } })
  t.ok(batch.status < 500, `batch with a lone surrogate: ${batch.status}`)
  await Promise.all(([['NUL', 'bad\u0000text'], ['lone surrogate', 'bad\ud800text']] as const).map(async ([label, bad]) => {
    const partnumber = `AI-TEXT-${label.replace(' ', '-')}`
    await stack.scenario(partnumber, { outcome: 'silent', silentAfter: 0 })
    const job = (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber, reclassify: true } })).body
    const { rows } = await stack.db.query('SELECT channel FROM jobs WHERE id = $1', [job.id])
    await publisher.publish(rows[0].channel, JSON.stringify({ status: 'processing', progress: { current: 1, total: 2, message: bad } }))
    await publisher.publish(rows[0].channel, JSON.stringify({ status: 'done', result: { partnumber, ncm: '85412120', description: bad, fabricante: bad } }))
    const end = await eventually(async () => {
      const j = await stack.api('GET', `/jobs/${job.id}`, { token: alice.token })
      return ['DONE', 'FAILED'].includes(j.body.status) ? j.body : undefined
    }, 25_000)
    t.equal(end.status, 'DONE', `an AI result with ${label} in its text is stored, not dropped (${end.error ?? ''})`)
  }))
})

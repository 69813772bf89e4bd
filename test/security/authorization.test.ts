import t0, { type Test } from 'tap'
import { startServices, startStack, eventually, retryingOn503, ADMIN, type Stack } from '../helpers/stack.js'
import { openEventStream } from '../helpers/sse.js'
import { simplePdf } from '../pdf/fixtures.js'
import { NO_LOGIN_LIMITS, SECRET_SHAPES, UNKNOWN_ID, streamTokenOf, type ApiResponse } from './support.js'

// OWASP API1 (broken object-level authorization) and API5 (broken function-level authorization).
// Alice owns one object of every kind that has an id; Bob asks for each of them by id and must get
// exactly the answer an id that does not exist gets (404, same body): nothing about Alice's object
// leaks, not even that it exists. Admins see everything. Every admin route, found from the OpenAPI
// document rather than from a hand-kept list, is refused to a plain user.

const { test } = t0
const services = await startServices()
const stack: Stack = await startStack(services, { simulator: { steps: 2, stepMs: 5 }, env: NO_LOGIN_LIMITS })
t0.teardown(async () => { await stack.close(); await services.stop() })

const alice = await stack.createUser('alice@nexa.test')
const bob = await stack.createUser('bob@nexa.test')
const admin = await stack.login()

async function finished(token: string, id: string) {
  return eventually(async () => {
    const job = await stack.api('GET', `/jobs/${id}`, { token })
    return ['DONE', 'FAILED'].includes(job.body.status) ? job.body : undefined
  }, 60_000) // a bound on a failure: a job can take long on a busy machine
}

async function upload(token: string, file: Buffer) {
  const form = new FormData()
  form.append('file', new Blob([new Uint8Array(file)], { type: 'application/pdf' }), 'alice-order.pdf')
  const response = await fetch(`${stack.url}/documents`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form })
  return { status: response.status, body: await response.json() as any }
}

// Setup requests try again while a busy gateway sheds load (503 with Retry-After), as a client does.
// Alice's objects: a finished single job with its classification, a failed job, a batch job, a document.
const single = await finished(alice.token, (await retryingOn503(() => stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'ALICE-SECRET-PART', description: 'alice private description' } }))).body.id)
await stack.scenario('ALICE-FAILING-PART', { outcome: 'fail', failAfter: 0 })
const failed = await finished(alice.token, (await retryingOn503(() => stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'ALICE-FAILING-PART' } }))).body.id)
const batch = await finished(alice.token, (await retryingOn503(() => stack.api('POST', '/classifications/batch', { token: alice.token, body: { partnumbers: [{ partnumber: 'ALICE-BATCH-1' }, { partnumber: 'ALICE-BATCH-2' }] } }))).body.id)
const doc = (await upload(alice.token, await simplePdf(1))).body
// Bob's own job: his stream token is valid, but for his job only.
const bobJob = (await retryingOn503(() => stack.api('POST', '/classifications', { token: bob.token, body: { partnumber: 'BOB-PART' } }))).body

const aliceSecrets = [alice.id, 'alice@nexa.test', 'ALICE-', 'alice private', 'alice-order', single.id, failed.id, batch.id, doc.document_id, single.result.id]

interface Probe {
  name: string
  /** The request for an object id. */
  call: (id: string, token: string) => Promise<ApiResponse>
  aliceId: string
  /** What an admin gets for Alice's object. */
  adminStatus: number
}

const eventsAs = (token: string) => async (id: string) => {
  const stream = await openEventStream(`${stack.url}/jobs/${id}/events`, { authorization: `Bearer ${token}` })
  if (stream.status === 200) {
    const snapshot = await stream.next('snapshot')
    stream.close()
    return { status: 200, headers: stream.headers, body: snapshot.data } as ApiResponse
  }
  await stream.ended
  return { status: stream.status, headers: stream.headers, body: stream.received.events[0]!.data } as ApiResponse
}

const probes: Probe[] = [
  { name: 'GET /jobs/:id (single)', aliceId: single.id, adminStatus: 200, call: (id, token) => stack.api('GET', `/jobs/${id}`, { token }) },
  { name: 'GET /jobs/:id (batch)', aliceId: batch.id, adminStatus: 200, call: (id, token) => stack.api('GET', `/jobs/${id}`, { token }) },
  { name: 'GET /jobs/:id/events', aliceId: single.id, adminStatus: 200, call: (id, token) => eventsAs(token)(id) },
  { name: 'GET /jobs/:id/results.csv', aliceId: batch.id, adminStatus: 200, call: (id, token) => stack.api('GET', `/jobs/${id}/results.csv`, { token }) },
  { name: 'GET /jobs/:id/results.json', aliceId: single.id, adminStatus: 200, call: (id, token) => stack.api('GET', `/jobs/${id}/results.json`, { token }) },
  { name: 'GET /documents/:id', aliceId: doc.document_id, adminStatus: 200, call: (id, token) => stack.api('GET', `/documents/${id}`, { token }) },
  {
    name: 'POST /classifications/batch {document_id}', aliceId: doc.document_id, adminStatus: 202,
    call: (id, token) => stack.api('POST', '/classifications/batch', { token, body: { document_id: id } }),
  },
  {
    name: 'PATCH /classifications/:id', aliceId: single.result.id, adminStatus: 200,
    call: (id, token) => stack.api('PATCH', `/classifications/${id}`, { token, body: { status: 'ACTIVE' } }),
  },
  // Last among the writes: the admin's retry starts Alice's failed job again.
  { name: 'POST /jobs/:id/retry', aliceId: failed.id, adminStatus: 202, call: (id, token) => stack.api('POST', `/jobs/${id}/retry`, { token }) },
]

const stateOfAlice = async () => (await stack.db.query(
  `SELECT (SELECT json_agg(json_build_object('id', id, 'status', status, 'attempt', attempt, 'updated_at', updated_at) ORDER BY id) FROM jobs WHERE owner_id = $1) AS jobs,
          (SELECT json_agg(json_build_object('id', c.id, 'status', c.status, 'reviewed_at', c.reviewed_at) ORDER BY c.id) FROM classifications c JOIN jobs j ON j.id = c.job_id WHERE j.owner_id = $1) AS classifications,
          (SELECT count(*)::int FROM jobs) AS all_jobs,
          (SELECT count(*)::int FROM documents) AS documents,
          (SELECT count(*)::int FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE j.owner_id = $1) AS events`,
  [alice.id],
)).rows[0]

function revealsNothing(t: Test, why: string, res: ApiResponse) {
  const text = JSON.stringify(res.body)
  for (const secret of aliceSecrets) t.notOk(text.includes(secret), `${why}: does not mention ${secret}`)
  t.notOk(res.headers.location, `${why}: no Location header`)
}

test('another user asking for any object of Alice by id gets exactly the answer of an id that does not exist', async (t) => {
  const before = await stateOfAlice()
  for (const probe of probes) {
    const theirs = await probe.call(probe.aliceId, bob.token)
    const nobodys = await probe.call(UNKNOWN_ID, bob.token)
    t.equal(theirs.status, 404, `${probe.name}: 404`)
    t.match(theirs.body, { statusCode: 404, error: 'Not Found', code: /_not_found$/, message: String }, `${probe.name}: JSON error`)
    t.same(theirs.body, nobodys.body, `${probe.name}: the same body as for an unknown id`)
    t.equal(theirs.headers['content-type'], nobodys.headers['content-type'], `${probe.name}: the same content type`)
    revealsNothing(t, probe.name, theirs)
  }
  t.same(await stateOfAlice(), before, 'nothing of Alice\'s changed, and nothing was created')
})

test('a stream token opens its own job only: Bob\'s token on Alice\'s job is refused like on an unknown job', async (t) => {
  const bobToken = streamTokenOf(bobJob.events_url)
  const onAlice = await stack.api('GET', `/jobs/${single.id}/events?token=${bobToken}`)
  const onNobody = await stack.api('GET', `/jobs/${UNKNOWN_ID}/events?token=${bobToken}`)
  t.equal(onAlice.status, 401)
  t.same(onAlice.body, onNobody.body)
  revealsNothing(t, 'stream token of another job', onAlice)
  const own = await openEventStream(`${stack.url}${bobJob.events_url}`)
  t.equal(own.status, 200, 'control: it opens Bob\'s own job')
  own.close()
})

test('lists, filters and cursors show a user their own objects only', async (t) => {
  const aliceJobIds = [single.id, failed.id, batch.id]
  const listings: Array<[string, string]> = [
    ['GET /jobs', '/jobs'],
    ['GET /jobs?limit=200', '/jobs?limit=200'],
    ['GET /jobs?partnumber=ALICE-SECRET-PART', '/jobs?partnumber=ALICE-SECRET-PART'],
    ['GET /jobs?status=FAILED', '/jobs?status=FAILED'],
    ['GET /jobs?kind=BATCH', '/jobs?kind=BATCH'],
    // A cursor made from Alice's newest job: a position in time, not a key to her rows.
    ['GET /jobs?cursor=(alice\'s)', `/jobs?cursor=${Buffer.from(`${new Date(Date.now() + 60_000).toISOString()}|${batch.id}`).toString('base64url')}`],
    ['GET /documents', '/documents'],
  ]
  for (const [why, path] of listings) {
    const res = await stack.api('GET', path, { token: bob.token })
    t.equal(res.status, 200, why)
    t.ok(res.body.items.every((item: any) => item.owner_id === bob.id), `${why}: only Bob's objects`)
    t.notOk(res.body.items.some((item: any) => aliceJobIds.includes(item.id) || item.document_id === doc.document_id), `${why}: none of Alice's`)
  }
  const asAdmin = await stack.api('GET', '/jobs?limit=200', { token: admin })
  t.ok(aliceJobIds.every((id) => asAdmin.body.items.some((j: any) => j.id === id)), 'admins list everyone\'s jobs')
  const adminDocs = await stack.api('GET', '/documents', { token: admin })
  t.ok(adminDocs.body.items.some((d: any) => d.document_id === doc.document_id), 'and everyone\'s documents')
})

test('admins see and act on every object', async (t) => {
  for (const probe of probes) {
    const res = await probe.call(probe.aliceId, admin)
    t.equal(res.status, probe.adminStatus, `${probe.name}: ${probe.adminStatus} for an admin`)
    t.notMatch(JSON.stringify(res.body ?? ''), SECRET_SHAPES, `${probe.name}: no secret in the answer`)
  }
  t.equal((await stack.api('PATCH', `/users/${alice.id}`, { token: admin, body: { role: 'USER' } })).status, 200, 'PATCH /users/:id')
  const { rows } = await stack.db.query('SELECT attempt FROM jobs WHERE id = $1', [failed.id])
  t.equal(rows[0].attempt, 2, 'the admin\'s retry started Alice\'s job again')
})

test('users get the same refusal for /users/:id whether the id exists or not', async (t) => {
  for (const body of [{ role: 'ADMIN' }, { disabled: true }]) {
    const existing = await stack.api('PATCH', `/users/${alice.id}`, { token: bob.token, body })
    const unknown = await stack.api('PATCH', `/users/${UNKNOWN_ID}`, { token: bob.token, body })
    t.equal(existing.status, 403, JSON.stringify(body))
    t.same(existing.body, unknown.body, 'the same body: an id\'s existence is not revealed')
  }
  const { rows } = await stack.db.query('SELECT role, disabled FROM users WHERE id = $1', [alice.id])
  t.same(rows[0], { role: 'USER', disabled: false })
})

test('every admin route (found from the OpenAPI document) is refused to users, and only admin routes are', async (t) => {
  const openapi = (await stack.api('GET', '/docs/json')).body
  const operations: Array<{ method: string; path: string }> = []
  for (const [path, item] of Object.entries<Record<string, unknown>>(openapi.paths)) {
    for (const method of Object.keys(item)) {
      if (['get', 'post', 'patch', 'put', 'delete'].includes(method)) operations.push({ method: method.toUpperCase(), path })
    }
  }
  t.ok(operations.length >= 15, `${operations.length} operations documented`)
  // Signing out would end the session the loop uses: it goes last.
  operations.sort((a, b) => Number(a.path === '/auth/logout') - Number(b.path === '/auth/logout'))
  const user = await stack.createUser('function-level@nexa.test')
  const before = await stack.db.query('SELECT id, role, disabled, updated_at FROM users ORDER BY id')
  const refused: string[] = []
  for (const { method, path } of operations) {
    const concrete = path.replace('{id}', UNKNOWN_ID).replace('{code}', 'NO-SUCH-PART')
    const res = await stack.api(method, concrete, { token: user.token, body: method === 'GET' ? undefined : {} })
    t.ok(res.status < 500, `${method} ${path} as a user: ${res.status}`)
    if (res.status === 403) {
      refused.push(`${method} ${path}`)
      t.match(res.body, { statusCode: 403, error: 'Forbidden', code: 'forbidden', message: String })
    }
  }
  t.same(refused.sort(), ['GET /users', 'PATCH /users/{id}', 'POST /users'], 'the admin routes, and no others, are refused')
  t.same((await stack.db.query('SELECT id, role, disabled, updated_at FROM users ORDER BY id')).rows, before.rows, 'no user changed')
  for (const route of refused) {
    const [method, path] = route.split(' ') as [string, string]
    const concrete = path.replace('{id}', UNKNOWN_ID)
    const asAdmin = await stack.api(method, concrete, { token: admin, body: method === 'GET' ? undefined : {} })
    t.not(asAdmin.status, 403, `${route}: an admin passes the check (${asAdmin.status})`)
    const anonymous = await stack.api(method, concrete, { body: method === 'GET' ? undefined : {} })
    t.equal(anonymous.status, 401, `${route}: 401 without a token`)
  }
  t.equal((await stack.api('GET', '/users', { token: admin })).body.items.some((u: any) => u.email === ADMIN.email), true)
})

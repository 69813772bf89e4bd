import t0 from 'tap'
import { startServices, startStack, eventually, type Stack } from '../helpers/stack.js'
import { simplePdf } from '../pdf/fixtures.js'
import { NO_LOGIN_LIMITS, SECRET_SHAPES, signIn } from './support.js'

// OWASP API3 (broken object property-level authorization). No mass assignment: a client cannot set
// an owner, a status, a role or any other server-kept property on any write route (test/routes/users
// shows the user routes). No excessive data exposure: every response is serialized through a declared
// schema, no schema has a property for a password, a hash, a salt or a secret, and no stored hash or
// the signing secret ever appears in an answer.

const { test } = t0
const services = await startServices()
const stack: Stack = await startStack(services, { simulator: { steps: 1, stepMs: 5 }, env: NO_LOGIN_LIMITS })
t0.teardown(async () => { await stack.close(); await services.stop() })

const alice = await stack.createUser('alice@nexa.test', 'alice-password-123')
const bob = await stack.createUser('bob@nexa.test')
const admin = await stack.login()

const done = (token: string, id: string) => eventually(async () => {
  const job = await stack.api('GET', `/jobs/${id}`, { token })
  return ['DONE', 'FAILED'].includes(job.body.status) ? job.body : undefined
}, 60_000) // a bound on a failure: a job can take long on a busy machine

async function upload(token: string, extraFields: Record<string, string> = {}, query = '') {
  const form = new FormData()
  for (const [name, value] of Object.entries(extraFields)) form.append(name, value)
  form.append('file', new Blob([new Uint8Array(await simplePdf(1))], { type: 'application/pdf' }), 'order.pdf')
  for (const [name, value] of Object.entries(extraFields)) form.append(name, value)
  const response = await fetch(`${stack.url}/documents${query}`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form })
  return { status: response.status, body: await response.json() as any }
}

const job = await done(alice.token, (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'MASS-ASSIGN-1' } })).body.id)
const rowCounts = async () => (await stack.db.query(
  `SELECT (SELECT count(*)::int FROM jobs) AS jobs, (SELECT count(*)::int FROM documents) AS documents,
          (SELECT json_agg(json_build_object('id', id, 'status', status, 'reviewed_by', reviewed_by, 'reviewed_at', reviewed_at) ORDER BY id) FROM classifications) AS classifications`,
)).rows[0]

test('no write route accepts a server-kept property: 400, and nothing changes', async (t) => {
  const before = await rowCounts()
  const item = { partnumber: 'MASS-ASSIGN-2' }
  const cases: Array<[string, string, string, unknown]> = [
    ['classify: owner_id', 'POST', '/classifications', { ...item, owner_id: bob.id }],
    ['classify: status', 'POST', '/classifications', { ...item, status: 'DONE' }],
    ['classify: source', 'POST', '/classifications', { ...item, source: 'HISTORY' }],
    ['classify: id', 'POST', '/classifications', { ...item, id: job.id }],
    ['classify: attempt', 'POST', '/classifications', { ...item, attempt: 7 }],
    ['classify: channel', 'POST', '/classifications', { ...item, channel: 'progress-mine' }],
    ['classify: result', 'POST', '/classifications', { ...item, result: { ncm: '85412120' } }],
    ['batch: owner_id', 'POST', '/classifications/batch', { partnumbers: [item], owner_id: bob.id }],
    ['batch: item status', 'POST', '/classifications/batch', { partnumbers: [{ ...item, status: 'DONE' }] }],
    ['batch: item classification_id', 'POST', '/classifications/batch', { partnumbers: [{ ...item, classification_id: job.result.id }] }],
    ['batch from a document: owner_id', 'POST', '/classifications/batch', { document_id: job.id, owner_id: bob.id }],
    ['review: partnumber', 'PATCH', `/classifications/${job.result.id}`, { status: 'ACTIVE', partnumber: 'OTHER' }],
    ['review: previous_ncm (the server records it on a correction)', 'PATCH', `/classifications/${job.result.id}`, { status: 'ACTIVE', previous_ncm: '00000000' }],
    ['review: job_id', 'PATCH', `/classifications/${job.result.id}`, { status: 'ACTIVE', job_id: null }],
    ['review: reviewed_by', 'PATCH', `/classifications/${job.result.id}`, { status: 'ACTIVE', reviewed_by: bob.id }],
    ['review: REPLACED is the server\'s to set', 'PATCH', `/classifications/${job.result.id}`, { status: 'REPLACED' }],
    ['documents: owner_id in the query', 'POST', `/documents?owner_id=${bob.id}`, undefined],
    ['jobs: owner_id in the query', 'GET', `/jobs?owner_id=${bob.id}`, undefined],
    ['documents list: owner_id in the query', 'GET', `/documents?owner_id=${bob.id}`, undefined],
  ]
  for (const [why, method, path, body] of cases) {
    const res = await stack.api(method, path, { token: alice.token, body })
    t.ok([400, 415].includes(res.status), `${why}: ${res.status}`)
    t.match(res.body, { statusCode: res.status, code: String, message: String })
  }
  t.same(await rowCounts(), before, 'nothing was created or changed')
})

test('what a user creates is always theirs, whatever else the request carries', async (t) => {
  // Multipart fields around the file are not read at all.
  const doc = await upload(alice.token, { owner_id: bob.id, role: 'ADMIN' })
  t.equal(doc.status, 201)
  t.equal(doc.body.owner_id, alice.id)
  t.equal((await stack.db.query('SELECT owner_id FROM documents WHERE id = $1', [doc.body.document_id])).rows[0].owner_id, alice.id)
  // A retry carries no body; one sent anyway is ignored.
  await stack.scenario('MASS-ASSIGN-FAIL', { outcome: 'fail', failAfter: 0 })
  const failed = await done(alice.token, (await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'MASS-ASSIGN-FAIL' } })).body.id)
  const retried = await stack.api('POST', `/jobs/${failed.id}/retry`, { token: alice.token, body: { owner_id: bob.id, attempt: 99, status: 'DONE' } })
  t.equal(retried.status, 202)
  t.match(retried.body, { owner_id: alice.id, attempt: 2 })
  const { rows } = await stack.db.query('SELECT owner_id FROM jobs WHERE id = ANY($1)', [[failed.id, retried.body.id]])
  t.ok(rows.every((r) => r.owner_id === alice.id), 'the jobs stay Alice\'s')
  const review = await stack.api('PATCH', `/classifications/${job.result.id}`, { token: alice.token, body: { status: 'ACTIVE' } })
  t.equal(review.status, 200)
  t.equal((await stack.db.query('SELECT reviewed_by FROM classifications WHERE id = $1', [job.result.id])).rows[0].reviewed_by, alice.id, 'the reviewer is who asked')
})

/** Every schema reachable from `schema`, following $refs into the document's components. */
function* walk(schema: any, components: Record<string, any>, seen = new Set<any>()): Generator<any> {
  if (!schema || typeof schema !== 'object' || seen.has(schema)) return
  seen.add(schema)
  if (typeof schema.$ref === 'string') {
    yield* walk(components[schema.$ref.split('/').at(-1)!], components, seen)
    return
  }
  yield schema
  for (const value of Object.values(schema)) {
    if (Array.isArray(value)) for (const v of value) yield* walk(v, components, seen)
    else if (value && typeof value === 'object') yield* walk(value, components, seen)
  }
}

test('every success response is serialized through a declared schema with no secret-shaped property', async (t) => {
  const openapi = (await stack.api('GET', '/docs/json')).body
  const components = openapi.components?.schemas ?? {}
  let operations = 0
  for (const [path, item] of Object.entries<any>(openapi.paths)) {
    for (const [method, operation] of Object.entries<any>(item)) {
      if (!['get', 'post', 'patch', 'put', 'delete'].includes(method)) continue
      operations++
      const name = `${method.toUpperCase()} ${path}`
      const success = Object.entries<any>(operation.responses ?? {}).filter(([code]) => /^2/.test(code))
      t.ok(success.length > 0, `${name}: declares its success response`)
      for (const [code, response] of success) {
        const media = Object.values<any>(response.content ?? {})
        if (code === '204') continue
        t.ok(media.length > 0 && media.every((m) => m.schema), `${name} ${code}: with a schema`)
        const problems: string[] = []
        for (const { schema } of media) {
          for (const node of walk(schema, components)) {
            for (const property of Object.keys(node.properties ?? {})) {
              if (/password|hash|salt|secret/i.test(property)) problems.push(`property "${property}"`)
            }
            // (OpenAPI 3.0 writes null as {type: object, nullable: true, enum: [null]}.)
            if (node.type === 'object' && !(Array.isArray(node.enum) && node.enum.length === 1 && node.enum[0] === null)) {
              if (node.additionalProperties === true) problems.push('an object that passes undeclared properties')
              if (!node.properties && !node.patternProperties) problems.push(`an object without declared properties: ${JSON.stringify(node).slice(0, 200)}`)
            }
          }
        }
        t.same(problems, [], `${name} ${code}: declared properties only, none for a password, hash, salt or secret`)
      }
    }
  }
  t.ok(operations >= 15, `${operations} operations checked`)
})

test('no stored password hash, refresh-token hash or the signing secret appears in any answer', async (t) => {
  const secrets: string[] = [stack.app.config.auth.jwtSecret]
  for (const row of (await stack.db.query('SELECT password_hash FROM users')).rows) secrets.push(row.password_hash, row.password_hash.split('$').at(-1))
  const aliceSession = await signIn(stack, 'alice@nexa.test', 'alice-password-123')
  const refreshed = await stack.api('POST', '/auth/refresh', { body: { refresh_token: aliceSession.refresh_token } })
  for (const row of (await stack.db.query('SELECT token_hash FROM refresh_tokens')).rows) {
    secrets.push(row.token_hash.toString('hex'), row.token_hash.toString('base64'), row.token_hash.toString('base64url'))
  }
  const answers: Array<[string, Awaited<ReturnType<Stack['api']>>]> = [['POST /auth/refresh', refreshed]]
  for (const token of [admin, alice.token]) {
    for (const path of ['/auth/me', '/users', '/users?limit=200', '/jobs?limit=200', `/jobs/${job.id}`, `/jobs/${job.id}/results.json`, `/jobs/${job.id}/results.csv`, '/documents', '/partnumbers', '/partnumbers/MASS-ASSIGN-1', '/docs/json']) {
      answers.push([`GET ${path}`, await stack.api('GET', path, { token })])
    }
  }
  answers.push(['POST /users', await stack.api('POST', '/users', { token: admin, body: { email: 'carol@nexa.test', password: 'carol-password-123' } })])
  answers.push(['PATCH /users/:id', await stack.api('PATCH', `/users/${bob.id}`, { token: admin, body: { role: 'USER' } })])
  let checked = 0
  for (const [name, answer] of answers) {
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)
    // (The OpenAPI document describes the sign-in body, which has a password field.)
    if (!name.includes('/docs/json')) t.notMatch(text, SECRET_SHAPES, `${name}: nothing shaped like a stored secret`)
    for (const secret of secrets) if (text.includes(secret)) t.fail(`${name}: a stored secret appears in the answer`)
    checked++
  }
  t.ok(checked >= 20, `${checked} answers checked against ${secrets.length} stored secrets`)
})

import t0 from 'tap'
import { startServices, startStack } from '../helpers/stack.js'

const { test } = t0
const services = await startServices()
const stack = await startStack(services)
t0.teardown(async () => { await stack.close(); await services.stop() })
const token = await stack.login()

const countRows = async () => (await stack.db.query(
  `SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM job_events) + (SELECT count(*) FROM classifications) AS n`,
)).rows[0].n

test('every bad input is a 4xx JSON error and changes nothing', async (t) => {
  const before = await countRows()
  const cases: Array<[string, string, string, unknown, number, Record<string, string>?]> = [
    ['no body', 'POST', '/classifications', undefined, 400],
    ['missing partnumber', 'POST', '/classifications', { description: 'x' }, 400],
    ['blank partnumber', 'POST', '/classifications', { partnumber: '   ' }, 400],
    ['empty partnumber', 'POST', '/classifications', { partnumber: '' }, 400],
    ['partnumber too long', 'POST', '/classifications', { partnumber: 'X'.repeat(101) }, 400],
    ['control characters', 'POST', '/classifications', { partnumber: 'AB\u0000CD' }, 400],
    ['partnumber of wrong type', 'POST', '/classifications', { partnumber: 12345 }, 400],
    ['unknown property', 'POST', '/classifications', { partnumber: 'OK123', owner_id: 'someone' }, 400],
    ['reclassify of wrong type', 'POST', '/classifications', { partnumber: 'OK123', reclassify: 'yes' }, 400],
    ['description too long', 'POST', '/classifications', { partnumber: 'OK123', description: 'd'.repeat(2001) }, 400],
    ['array body', 'POST', '/classifications', [{ partnumber: 'OK123' }], 400],
    ['job id not a uuid', 'GET', '/jobs/not-a-uuid', undefined, 400],
    ['unknown job', 'GET', '/jobs/00000000-0000-4000-8000-000000000000', undefined, 404],
    ['retry of unknown job', 'POST', '/jobs/00000000-0000-4000-8000-000000000000/retry', undefined, 404],
    ['bad status filter', 'GET', '/jobs?status=WHATEVER', undefined, 400],
    ['bad date filter', 'GET', '/jobs?from=yesterday', undefined, 400],
    ['limit too large', 'GET', '/jobs?limit=100000', undefined, 400],
    ['forged cursor', 'GET', '/jobs?cursor=Zm9vfGJhcg', undefined, 400],
    ['unknown query parameter', 'GET', '/jobs?owner_id=x', undefined, 400],
    ['review with a bad status', 'PATCH', '/classifications/00000000-0000-4000-8000-000000000000', { status: 'MAYBE' }, 400],
    ['review of unknown classification', 'PATCH', '/classifications/00000000-0000-4000-8000-000000000000', { status: 'ACTIVE' }, 404],
    ['unknown route', 'GET', '/nothing-here', undefined, 404],
  ]
  for (const [why, method, path, body, status] of cases) {
    const res = await stack.api(method, path, { token, body })
    t.equal(res.status, status, why)
    t.match(res.body, { statusCode: status, code: String, message: String }, `${why}: JSON error body`)
    t.notMatch(JSON.stringify(res.body), /at .*\.ts:\d+|SELECT|INSERT/, `${why}: no stack or SQL`)
  }
  const wrongType = await stack.api('POST', '/classifications', { token, body: undefined, headers: { 'content-type': 'application/xml' } })
  t.equal(wrongType.status, 415)
  const notJson = await stack.api('POST', '/classifications', { token, headers: { 'content-type': 'application/json' } })
  t.equal(notJson.status, 400)
  t.equal(await countRows(), before, 'nothing was written')
})

test('a body over 1 MB is refused with 413', async (t) => {
  const res = await stack.api('POST', '/classifications', { token, body: { partnumber: 'OK', description: 'x'.repeat(1_100_000) } })
  t.equal(res.status, 413)
  t.equal(res.body.statusCode, 413)
})

test('operations endpoints: health, readiness, OpenAPI', async (t) => {
  t.same((await stack.api('GET', '/health')).body, { status: 'ok' })
  t.same((await stack.api('GET', '/ready')).body, { status: 'ready', database: 'ok', bus: 'ok' })
  const openapi = await stack.api('GET', '/docs/json')
  t.equal(openapi.status, 200)
  for (const path of ['/auth/login', '/classifications', '/jobs/{id}/events', '/partnumbers/{code}', '/users/{id}']) t.ok(openapi.body.paths[path], `documents ${path}`)
  const res = await stack.api('GET', '/health')
  t.ok(res.headers['x-request-id'], 'every response carries a request id')
  t.equal(res.headers['x-content-type-options'], 'nosniff', 'security headers are set')
})

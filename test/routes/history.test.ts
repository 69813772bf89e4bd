import t0 from 'tap'
import { startServices, startStack, eventually } from '../helpers/stack.js'

const { test } = t0
const services = await startServices()
const stack = await startStack(services, { simulator: { steps: 1, stepMs: 5 } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const alice = await stack.createUser('alice@nexa.test')
const bob = await stack.createUser('bob@nexa.test')

async function classifyAndWait(token: string, partnumber: string, reclassify = false) {
  const started = await stack.api('POST', '/classifications', { token, body: { partnumber, reclassify } })
  return eventually(async () => {
    const job = await stack.api('GET', `/jobs/${started.body.id}`, { token })
    return job.body.status === 'DONE' ? job.body : undefined
  })
}

test('reclassifying replaces the accepted classification; history lists both, newest first', async (t) => {
  const first = await classifyAndWait(alice.token, 'CL10C330JB8NNNC')
  t.equal(first.result.ncm, '85322410')
  const second = await classifyAndWait(alice.token, 'CL10C330JB8NNNC', true)
  t.not(second.result.id, first.result.id)
  const history = await stack.api('GET', '/partnumbers/cl10c330jb8nnnc', { token: bob.token })
  t.equal(history.status, 200)
  t.equal(history.body.accepted.id, second.result.id)
  t.same(history.body.classifications.map((c: any) => [c.id, c.status]), [[second.result.id, 'ACTIVE'], [first.result.id, 'REPLACED']])
  const { rows } = await stack.db.query(`SELECT count(*)::int AS n FROM classifications c JOIN partnumbers p ON p.id = c.partnumber_id WHERE p.code = 'CL10C330JB8NNNC' AND c.status = 'ACTIVE'`)
  t.equal(rows[0].n, 1, 'one accepted classification per part number')

  await t.test('the owner can reject and accept again; another user cannot touch it', async (t) => {
    const asBob = await stack.api('PATCH', `/classifications/${first.result.id}`, { token: bob.token, body: { status: 'ACTIVE' } })
    t.equal(asBob.status, 404)
    const rejected = await stack.api('PATCH', `/classifications/${second.result.id}`, { token: alice.token, body: { status: 'REJECTED' } })
    t.equal(rejected.status, 200)
    t.equal(rejected.body.status, 'REJECTED')
    let h = await stack.api('GET', '/partnumbers/CL10C330JB8NNNC', { token: alice.token })
    t.equal(h.body.accepted, null, 'no accepted classification after the rejection')
    const accepted = await stack.api('PATCH', `/classifications/${first.result.id}`, { token: alice.token, body: { status: 'ACTIVE' } })
    t.equal(accepted.body.status, 'ACTIVE')
    h = await stack.api('GET', '/partnumbers/CL10C330JB8NNNC', { token: alice.token })
    t.equal(h.body.accepted.id, first.result.id)
    const bad = await stack.api('PATCH', `/classifications/${first.result.id}`, { token: alice.token, body: { status: 'REPLACED' } })
    t.equal(bad.status, 400, 'REPLACED is not a review decision')
  })
})

test('a rejected result is not used to answer from history', async (t) => {
  const job = await classifyAndWait(alice.token, 'SN74HC595DR')
  await stack.api('PATCH', `/classifications/${job.result.id}`, { token: alice.token, body: { status: 'REJECTED' } })
  const again = await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'SN74HC595DR' } })
  t.equal(again.body.source, 'AI')
})

test('GET /partnumbers searches anywhere in the code, paginated', async (t) => {
  for (const pn of ['GRM188R71H104KA93D', 'GRM155R71C104KA88D', 'RC0603FR-0710KL']) await classifyAndWait(alice.token, pn)
  const res = await stack.api('GET', '/partnumbers?q=grm&limit=1', { token: bob.token })
  t.equal(res.status, 200)
  t.same(res.body.items.map((i: any) => i.partnumber), ['GRM155R71C104KA88D'])
  t.equal(res.body.items[0].accepted.ncm, '85322410')
  const next = await stack.api('GET', `/partnumbers?q=grm&limit=1&after=${res.body.next_after}`, { token: bob.token })
  t.same(next.body.items.map((i: any) => i.partnumber), ['GRM188R71H104KA93D'])
  const wildcard = await stack.api('GET', '/partnumbers?q=%25', { token: bob.token })
  t.same(wildcard.body.items, [], '% is searched literally, not as a wildcard')
  t.equal((await stack.api('GET', '/partnumbers/NEVER-SEEN', { token: bob.token })).status, 404)
})

test('GET /jobs filters by status, kind, part number and date, with a cursor', async (t) => {
  const all = await stack.api('GET', '/jobs?limit=2', { token: alice.token })
  t.equal(all.body.items.length, 2)
  t.ok(all.body.next_cursor)
  const page2 = await stack.api('GET', `/jobs?limit=2&cursor=${all.body.next_cursor}`, { token: alice.token })
  t.notOk(page2.body.items.some((j: any) => all.body.items.some((k: any) => k.id === j.id)), 'pages do not overlap')
  const byPn = await stack.api('GET', '/jobs?partnumber=cl10c330jb8nnnc', { token: alice.token })
  t.equal(byPn.body.items.length, 2)
  t.ok(byPn.body.items.every((j: any) => j.partnumber === 'CL10C330JB8NNNC'))
  const done = await stack.api('GET', '/jobs?status=DONE&kind=SINGLE', { token: alice.token })
  t.ok(done.body.items.every((j: any) => j.status === 'DONE'))
  const future = await stack.api('GET', `/jobs?from=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, { token: alice.token })
  t.same(future.body.items, [])
  t.same((await stack.api('GET', '/jobs', { token: bob.token })).body.items, [], 'bob sees only his own jobs')
})

test('GET /jobs pages through jobs made in one transaction (one created_at, to the microsecond) without skipping any', async (t) => {
  const carol = await stack.createUser('carol-pages@nexa.test')
  await stack.db.query(
    `INSERT INTO jobs (kind, owner_id, status, source, partnumber, input, channel, finished_at, error)
     SELECT 'SINGLE', $1, 'FAILED', 'AI', 'SAME-TX-' || n, '{"description":null,"manufacturer":null,"supplier":null}', 'history-same-tx-' || n, now(), 'x' FROM generate_series(1, 7) AS n`,
    [carol.id],
  )
  const seen: string[] = []
  let cursor: string | null = null
  do {
    const page: any = await stack.api('GET', `/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: carol.token })
    t.equal(page.status, 200, JSON.stringify(page.body).slice(0, 200))
    seen.push(...page.body.items.map((j: any) => j.partnumber))
    cursor = page.body.next_cursor
  } while (cursor)
  t.same([...seen].sort(), Array.from({ length: 7 }, (_, i) => `SAME-TX-${i + 1}`).sort(), 'every job once')
})

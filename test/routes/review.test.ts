import t0 from 'tap'
import { startServices, startStack, eventually } from '../helpers/stack.js'
import { storeClassification } from '../../src/services/classifications/classifications-store.js'
import type { ClassificationFields } from '../../src/services/ai/classification-result.js'
import type { Review } from '../../src/services/classifications/review-reasons.js'

// Issue 12: a result the gateway cannot trust by itself is stored PENDING and waits for a person
// (GET /classifications?status=PENDING, PATCH /classifications/:id). Until accepted it is never the
// part number's accepted classification, and never answers a request from history.
//
// The jobs are made by the API and run through the contract simulator; their PENDING results are
// stored with storeClassification, as the job service does for an answer it cannot trust.

const { test } = t0
const services = await startServices()
const stack = await startStack(services, { simulator: { steps: 1, stepMs: 5 } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const alice = await stack.createUser('alice.review@nexa.test')
const bob = await stack.createUser('bob.review@nexa.test')
const admin = { token: await stack.login() }

const MISMATCH: Review = { reasons: ['partnumber_mismatch'], answeredPartnumber: 'X-ALT' }
const BY_ORDER: Review = { reasons: ['attributed_by_order'], answeredPartnumber: null }

const fields = (ncm = '85423190', description = 'Integrated circuit'): ClassificationFields => ({
  partnumber: null, ncm, ex: null, nve: null, description, manufacturer: { name: 'Acme Review', address: null, country: 'BR' }, confidence: 0.7,
})

const finished = (token: string, id: string) => eventually(async () => {
  const job = await stack.api('GET', `/jobs/${id}`, { token })
  return ['DONE', 'FAILED'].includes(job.body.status) ? job.body : undefined
})

async function classifyAndWait(token: string, partnumber: string, reclassify = false) {
  const started = await stack.api('POST', '/classifications', { token, body: { partnumber, reclassify } })
  if (started.status !== 202) throw new Error(`classify: ${started.status} ${JSON.stringify(started.body)}`)
  return finished(token, started.body.id)
}

/** A single job of `token`'s user for `partnumber`, whose result waits for review. */
async function pendingResult(token: string, partnumber: string, review: Review = MISMATCH, ncm = '85423190'): Promise<{ jobId: string; id: string }> {
  // The job is the API's; the AI server's answer is stored PENDING as the job service stores one it cannot trust.
  await stack.scenario(partnumber, { outcome: 'fail' })
  const job = await classifyAndWait(token, partnumber, true)
  await stack.scenario(partnumber, {})
  const id = await storeClassification(stack.db, job.id, partnumber, fields(ncm), review)
  await stack.db.query(`UPDATE jobs SET status = 'DONE', error = NULL, classification_id = $2 WHERE id = $1`, [job.id, id])
  return { jobId: job.id, id }
}

async function statuses(partnumber: string): Promise<Record<string, string>> {
  const { rows } = await stack.db.query(
    'SELECT c.id, c.status FROM classifications c JOIN partnumbers p ON p.id = c.partnumber_id WHERE p.code = $1', [partnumber])
  return Object.fromEntries(rows.map((r) => [r.id, r.status]))
}

const review = (token: string, id: string, status: string, expected?: string) =>
  stack.api('PATCH', `/classifications/${id}`, { token, body: expected ? { status, expected_status: expected } : { status } })

test('a PENDING result is shown in the history with its reasons, but history answers use the ACTIVE one only', async (t) => {
  const accepted = await classifyAndWait(alice.token, 'RV-HIST-1')
  const pending = await pendingResult(alice.token, 'RV-HIST-1')

  const history = await stack.api('GET', '/partnumbers/rv-hist-1', { token: bob.token })
  t.equal(history.status, 200)
  t.equal(history.body.accepted.id, accepted.result.id, 'accepted: the ACTIVE one')
  const shown = history.body.classifications.find((c: any) => c.id === pending.id)
  t.match(shown, {
    status: 'PENDING', answered_partnumber: 'X-ALT', job_id: pending.jobId,
    review_reasons: [{ code: 'partnumber_mismatch', message: /another part number/ }],
  })

  const again = await classifyAndWait(alice.token, 'RV-HIST-1')
  t.equal(again.source, 'HISTORY')
  t.equal(again.result.id, accepted.result.id, 'answered with the ACTIVE one, not the newer PENDING one')

  // A part number whose only result waits for review has no accepted classification: ask the AI server.
  await pendingResult(alice.token, 'RV-HIST-2', BY_ORDER)
  const onlyPending = await stack.api('GET', '/partnumbers/RV-HIST-2', { token: alice.token })
  t.equal(onlyPending.body.accepted, null)
  t.same(onlyPending.body.classifications.map((c: any) => [c.status, c.review_reasons.map((r: any) => r.code)]), [['PENDING', ['attributed_by_order']]])
  const asked = await stack.api('POST', '/classifications', { token: alice.token, body: { partnumber: 'RV-HIST-2' } })
  t.equal(asked.body.source, 'AI')
  const batch = await stack.api('POST', '/classifications/batch', { token: alice.token, body: { partnumbers: [{ partnumber: 'RV-HIST-2' }, { partnumber: 'RV-HIST-1' }] } })
  t.same(batch.body.items.map((i: any) => [i.partnumber, i.source]), [['RV-HIST-2', null], ['RV-HIST-1', 'HISTORY']], 'a batch too')
  t.equal(batch.body.items[1].result.id, accepted.result.id)
  await finished(alice.token, asked.body.id)
  await finished(alice.token, batch.body.id)
})

test('accepting a PENDING result makes it the accepted one; the previous one becomes REPLACED', async (t) => {
  const before = await classifyAndWait(alice.token, 'RV-ACCEPT-1')
  const pending = await pendingResult(alice.token, 'RV-ACCEPT-1')

  const res = await review(alice.token, pending.id, 'ACTIVE', 'PENDING')
  t.equal(res.status, 200)
  t.match(res.body, { id: pending.id, status: 'ACTIVE', answered_partnumber: 'X-ALT', review_reasons: [{ code: 'partnumber_mismatch' }] }, 'the reasons stay on record')
  t.ok(res.body.reviewed_at)
  const { rows: [row] } = await stack.db.query('SELECT reviewed_by, reviewed_at FROM classifications WHERE id = $1', [pending.id])
  t.equal(row.reviewed_by, alice.id, 'who accepted it is recorded')
  t.same(await statuses('RV-ACCEPT-1'), { [before.result.id]: 'REPLACED', [pending.id]: 'ACTIVE' })

  const history = await stack.api('GET', '/partnumbers/RV-ACCEPT-1', { token: alice.token })
  t.equal(history.body.accepted.id, pending.id)
  const fromHistory = await classifyAndWait(alice.token, 'RV-ACCEPT-1')
  t.equal(fromHistory.result.id, pending.id, 'now answers from history')

  // Seen PENDING in the queue, decided meanwhile: refused. Repeated without a precondition (a retry): harmless.
  const stale = await review(alice.token, pending.id, 'REJECTED', 'PENDING')
  t.equal(stale.status, 409)
  t.equal(stale.body.code, 'classification_status_changed')
  t.match(stale.body.message, /ACTIVE now/)
  const twice = await review(alice.token, pending.id, 'ACTIVE')
  t.equal(twice.status, 200)
  t.equal(twice.body.status, 'ACTIVE')
  t.same(await statuses('RV-ACCEPT-1'), { [before.result.id]: 'REPLACED', [pending.id]: 'ACTIVE' }, 'nothing changed')
})

test('rejecting a PENDING result leaves the ACTIVE one; decisions can be repeated and changed', async (t) => {
  const active = await classifyAndWait(alice.token, 'RV-REJECT-1')
  const pending = await pendingResult(alice.token, 'RV-REJECT-1')

  const rejected = await review(alice.token, pending.id, 'REJECTED', 'PENDING')
  t.equal(rejected.status, 200)
  t.equal(rejected.body.status, 'REJECTED')
  t.ok(rejected.body.reviewed_at)
  t.same(await statuses('RV-REJECT-1'), { [active.result.id]: 'ACTIVE', [pending.id]: 'REJECTED' }, 'the ACTIVE one untouched')

  const again = await review(admin.token, pending.id, 'REJECTED')
  t.equal(again.status, 200, 'repeating a decision is harmless...')
  t.same(await statuses('RV-REJECT-1'), { [active.result.id]: 'ACTIVE', [pending.id]: 'REJECTED' })
  const { rows: [row] } = await stack.db.query('SELECT u.email FROM classifications c JOIN users u ON u.id = c.reviewed_by WHERE c.id = $1', [pending.id])
  t.equal(row.email, 'admin@nexa.test', '...and records who confirmed it')
  const stale = await review(alice.token, pending.id, 'ACTIVE', 'PENDING')
  t.equal(stale.body.code, 'classification_status_changed', 'a decision taken on a PENDING it no longer is: refused')
  t.same(await statuses('RV-REJECT-1'), { [active.result.id]: 'ACTIVE', [pending.id]: 'REJECTED' })

  // Changing one's mind: a REJECTED result is reinstated like a PENDING one is accepted.
  const reinstated = await review(alice.token, pending.id, 'ACTIVE', 'REJECTED')
  t.equal(reinstated.status, 200)
  t.same(await statuses('RV-REJECT-1'), { [active.result.id]: 'REPLACED', [pending.id]: 'ACTIVE' })

  // Rejecting the ACTIVE one withdraws it: the part number has no accepted classification.
  const withdrawn = await review(alice.token, pending.id, 'REJECTED')
  t.equal(withdrawn.status, 200)
  t.equal((await stack.api('GET', '/partnumbers/RV-REJECT-1', { token: alice.token })).body.accepted, null)
  // A REPLACED one may be restored.
  const restored = await review(alice.token, active.result.id, 'ACTIVE')
  t.equal(restored.status, 200)
  t.same(await statuses('RV-REJECT-1'), { [active.result.id]: 'ACTIVE', [pending.id]: 'REJECTED' })

  const bad = await review(alice.token, pending.id, 'PENDING')
  t.equal(bad.status, 400, 'PENDING is not a decision')
  t.equal((await review(alice.token, pending.id, 'REJECTED', 'DONE')).status, 400, 'nor DONE a status')
  const unknown = await review(alice.token, '00000000-0000-4000-8000-000000000000', 'ACTIVE')
  t.equal(unknown.status, 404)
})

test('only the owner of the job and admins see and review its results', async (t) => {
  const pending = await pendingResult(alice.token, 'RV-VIS-1')
  const asBob = await review(bob.token, pending.id, 'ACTIVE')
  t.equal(asBob.status, 404)
  t.equal(asBob.body.code, 'classification_not_found')
  t.same(await statuses('RV-VIS-1'), { [pending.id]: 'PENDING' }, 'untouched')

  const bobsQueue = await stack.api('GET', '/classifications?status=PENDING', { token: bob.token })
  t.equal(bobsQueue.status, 200)
  t.notOk(bobsQueue.body.items.some((c: any) => c.id === pending.id), 'not in another user\'s queue')
  t.same((await stack.api('GET', `/classifications?job_id=${pending.jobId}`, { token: bob.token })).body.items, [])

  const alicesQueue = await stack.api('GET', '/classifications?status=PENDING&partnumber=rv-vis-1', { token: alice.token })
  t.same(alicesQueue.body.items.map((c: any) => c.id), [pending.id])
  const adminsQueue = await stack.api('GET', '/classifications?status=PENDING&partnumber=RV-VIS-1', { token: admin.token })
  t.same(adminsQueue.body.items.map((c: any) => c.id), [pending.id], 'admins see everyone\'s')

  const asAdmin = await review(admin.token, pending.id, 'REJECTED')
  t.equal(asAdmin.status, 200)
  const { rows: [row] } = await stack.db.query('SELECT u.email FROM classifications c JOIN users u ON u.id = c.reviewed_by WHERE c.id = $1', [pending.id])
  t.equal(row.email, 'admin@nexa.test')
  t.equal((await stack.api('GET', '/classifications', { token: alice.token, headers: {} })).status, 200)
  t.equal((await stack.api('GET', '/classifications?status=PENDING')).status, 401)
})

test('two reviewers accepting at once leave exactly one ACTIVE classification', async (t) => {
  for (let round = 0; round < 4; round++) {
    const partnumber = `RV-RACE-${round}`
    const active = await classifyAndWait(alice.token, partnumber)
    const pending = await pendingResult(alice.token, partnumber)
    // The same result, from the queue, by its owner and an admin at the same moment: one decides, the other is told.
    const both = await Promise.all([review(alice.token, pending.id, 'ACTIVE', 'PENDING'), review(admin.token, pending.id, 'ACTIVE', 'PENDING')])
    t.same(both.map((r) => r.status).sort(), [200, 409], `round ${round}: one accepts, the other gets 409`)
    t.equal(both.find((r) => r.status === 409)!.body.code, 'classification_status_changed')
    t.same(await statuses(partnumber), { [active.result.id]: 'REPLACED', [pending.id]: 'ACTIVE' })
  }

  // Without the precondition both succeed, one after the other: still one ACTIVE row.
  for (let round = 0; round < 4; round++) {
    const partnumber = `RV-RACE1-${round}`
    const active = await classifyAndWait(alice.token, partnumber)
    const pending = await pendingResult(alice.token, partnumber)
    const both = await Promise.all([review(alice.token, pending.id, 'ACTIVE'), review(admin.token, pending.id, 'ACTIVE')])
    t.same(both.map((r) => r.status), [200, 200])
    t.same(await statuses(partnumber), { [active.result.id]: 'REPLACED', [pending.id]: 'ACTIVE' }, `round ${round}`)
  }

  // Opposite decisions at once from the queue: the first one stands, the other is refused.
  for (let round = 0; round < 4; round++) {
    const partnumber = `RV-RACE3-${round}`
    const active = await classifyAndWait(alice.token, partnumber)
    const pending = await pendingResult(alice.token, partnumber)
    const [accept, reject] = await Promise.all([review(alice.token, pending.id, 'ACTIVE', 'PENDING'), review(admin.token, pending.id, 'REJECTED', 'PENDING')])
    t.same([accept.status, reject.status].sort(), [200, 409], `round ${round}`)
    const now = await statuses(partnumber)
    if (accept.status === 200) t.same(now, { [active.result.id]: 'REPLACED', [pending.id]: 'ACTIVE' })
    else t.same(now, { [active.result.id]: 'ACTIVE', [pending.id]: 'REJECTED' })
  }

  // Two different results of one part number accepted at once: both succeed, one after the other;
  // the later decision is the accepted one and the earlier is REPLACED.
  for (let round = 0; round < 4; round++) {
    const partnumber = `RV-RACE2-${round}`
    const first = await pendingResult(alice.token, partnumber, MISMATCH, '85423190')
    const second = await pendingResult(alice.token, partnumber, BY_ORDER, '85411000')
    const both = await Promise.all([review(alice.token, first.id, 'ACTIVE'), review(admin.token, second.id, 'ACTIVE')])
    t.same(both.map((r) => r.status), [200, 200])
    const now = Object.values(await statuses(partnumber)).sort()
    t.same(now, ['ACTIVE', 'REPLACED'], `round ${round}: exactly one ACTIVE`)
  }
})

test('an ACTIVE classification written at the same moment by anything else: 409 classification_conflict, never a 500', async (t) => {
  const partnumber = 'RV-UNIQUE-1'
  const other = await pendingResult(alice.token, partnumber, MISMATCH, '85423190')
  const mine = await pendingResult(alice.token, partnumber, BY_ORDER, '85411000')

  // A writer that makes `other` ACTIVE without taking the part number's lock, still uncommitted.
  const writer = await stack.db.connect()
  t.teardown(() => writer.release())
  await writer.query('BEGIN')
  await writer.query(`UPDATE classifications SET status = 'ACTIVE' WHERE id = $1`, [other.id])

  const patch = review(alice.token, mine.id, 'ACTIVE')
  // The review waits on the unique index for the writer's row...
  await eventually(async () => {
    const { rows } = await stack.db.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE classifications SET status = $2%'`)
    return rows[0].n > 0
  })
  // ...which commits first: the index refuses the second ACTIVE row.
  await writer.query('COMMIT')
  const res = await patch
  t.equal(res.status, 409)
  t.equal(res.body.code, 'classification_conflict')
  t.match(res.body.message, /reload/)
  t.same(await statuses(partnumber), { [other.id]: 'ACTIVE', [mine.id]: 'PENDING' }, 'nothing changed by the refused review')
})

test('the review queue: newest first, cursor-paginated, with reasons, answered part number and job', async (t) => {
  const carol = await stack.createUser('carol.review@nexa.test')
  const partnumbers = Array.from({ length: 7 }, (_, i) => `RV-QUEUE-${i}`)
  // A batch of carol's whose items the AI server fails; their answers are then stored for review.
  await stack.scenario(partnumbers[0]!, { failItems: partnumbers })
  const started = await stack.api('POST', '/classifications/batch', { token: carol.token, body: { partnumbers: partnumbers.map((partnumber) => ({ partnumber })) } })
  t.equal(started.status, 202)
  await finished(carol.token, started.body.id)
  await stack.scenario(partnumbers[0]!, {})

  // Five stored in one transaction (one chunk's answers share created_at to the microsecond), two after.
  const client = await stack.db.connect()
  const ids: string[] = []
  try {
    await client.query('BEGIN')
    for (const pn of partnumbers.slice(0, 5)) ids.push(await storeClassification(client, started.body.id, pn, fields(), { reasons: ['partnumber_mismatch'], answeredPartnumber: `${pn}-ALT` }))
    await client.query('COMMIT')
  } finally {
    client.release()
  }
  for (const pn of partnumbers.slice(5)) ids.push(await storeClassification(stack.db, started.body.id, pn, fields(), BY_ORDER))

  const seen: any[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page: any = await stack.api('GET', `/classifications?status=PENDING&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: carol.token })
    t.equal(page.status, 200)
    t.ok(page.body.items.length <= 2)
    seen.push(...page.body.items)
    cursor = page.body.next_cursor
    pages++
  } while (cursor && pages < 10)
  t.equal(pages, 4, '7 results, 2 a page (the last page empty-handed or short)')
  t.same(seen.map((c) => c.id).sort(), [...ids].sort(), 'every PENDING result once, none skipped')
  t.equal(new Set(seen.map((c) => c.id)).size, seen.length, 'no result twice')
  const order = seen.map((c) => [new Date(c.created_at).getTime(), c.id])
  t.same(order, [...order].sort((a, b) => (b[0] as number) - (a[0] as number) || (b[1] < a[1] ? -1 : b[1] > a[1] ? 1 : 0)), 'newest first')
  for (const c of seen) {
    t.equal(c.status, 'PENDING')
    t.equal(c.job_id, started.body.id)
    t.ok(c.review_reasons.length > 0)
    if (c.review_reasons[0].code === 'partnumber_mismatch') t.equal(c.answered_partnumber, `${c.partnumber}-ALT`)
    else t.equal(c.answered_partnumber, null)
  }

  // Decided results leave the queue.
  t.equal((await review(carol.token, ids[0]!, 'ACTIVE')).status, 200)
  t.equal((await review(carol.token, ids[1]!, 'REJECTED')).status, 200)
  const queue = await stack.api('GET', `/classifications?status=PENDING&job_id=${started.body.id}&limit=200`, { token: carol.token })
  t.same(queue.body.items.map((c: any) => c.id).sort(), ids.slice(2).sort())
  t.equal(queue.body.next_cursor, null)
  const active = await stack.api('GET', '/classifications?status=ACTIVE', { token: carol.token })
  t.same(active.body.items.map((c: any) => c.id), [ids[0]])

  t.equal((await stack.api('GET', '/classifications?cursor=bm90LWEtY3Vyc29y', { token: carol.token })).body.code, 'invalid_cursor')
  t.equal((await stack.api('GET', '/classifications?status=DONE', { token: carol.token })).status, 400)
})

test('the queue is in the OpenAPI document, and the review rules in PATCH\'s description', async (t) => {
  const res = await stack.api('GET', '/docs/json')
  t.equal(res.status, 200)
  const list = res.body.paths['/classifications'].get
  t.ok(list.parameters.some((p: any) => p.name === 'status' && p.in === 'query'))
  t.ok(list.parameters.some((p: any) => p.name === 'cursor'))
  const patch = res.body.paths['/classifications/{id}'].patch
  t.match(patch.description, /classification_status_changed/)
  t.ok(patch.requestBody.content['application/json'].schema.properties.expected_status)
  t.match(patch.description, /classification_conflict/)
  t.ok(patch.responses['409'])
})

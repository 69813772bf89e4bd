import t0 from 'tap'
import { startServices, startStack, eventually } from '../helpers/stack.js'
import { storeClassification } from '../../src/services/classifications/classifications-store.js'
import type { ClassificationFields } from '../../src/services/ai/classification-result.js'
import { checkNcm } from '../../src/services/ncm/ncm-check.js'

// Issue 15: every result is checked against the official NCM table (ncm_check), a result whose code
// is not VALID waits for review (ncm_unknown, ncm_expired, ncm_not_leaf), a code is corrected by hand
// only to a VALID one (PATCH /classifications/:id {ncm}), and the exports carry the check.
// The gateway loads the official table shipped in data/ncm/ at startup (its database is new).

const { test } = t0
const services = await startServices()
t0.teardown(() => services.stop())

const UNKNOWN_NCM = '99999999'

const fields = (ncm: string): ClassificationFields => ({
  partnumber: null, ncm, ex: null, nve: null, description: 'Integrated circuit', manufacturer: { name: 'Acme NCM', address: null, country: 'BR' }, confidence: 0.7,
})

const PROFILES = [
  { name: 'contract', simulator: { steps: 1, stepMs: 5 } },
  { name: 'real-server', simulator: { profile: 'real-server' as const, realServer: { variant: 'as-intended' as const, agentMs: 150, secondMs: 500 } } },
]

for (const profile of PROFILES) {
  test(`${profile.name} simulator`, async (t) => {
    const stack = await startStack(services, { simulator: profile.simulator })
    t.teardown(() => stack.close())
    t.not((await checkNcm(stack.db, '85423190')).table_version, null, 'the official table is loaded')
    const real = profile.name === 'real-server'
    const user = await stack.createUser(`ncm.${profile.name}@nexa.test`)
    const token = user.token
    const finished = (id: string) => eventually(async () => {
      const job = await stack.api('GET', `/jobs/${id}`, { token })
      return ['DONE', 'FAILED'].includes(job.body.status) ? job.body : undefined
    })
    /**
     * One part number classified: a single job on the contract simulator; on the real server a batch
     * of one (its single endpoint fails every job, as the real one does), seen as {id, status, source, result}.
     */
    const classify = async (partnumber: string, reclassify = false) => {
      if (!real) {
        const started = await stack.api('POST', '/classifications', { token, body: { partnumber, reclassify } })
        t.equal(started.status, 202, `classify ${partnumber}`)
        return finished(started.body.id)
      }
      const started = await stack.api('POST', '/classifications/batch', { token, body: { partnumbers: [{ partnumber }], reclassify } })
      t.equal(started.status, 202, `classify ${partnumber}`)
      const job = await eventually(async () => {
        const body = (await stack.api('GET', `/jobs/${started.body.id}`, { token })).body
        return body.status === 'DONE' && body.items.every((i: any) => i.status !== 'PENDING') ? body : undefined
      }, 60_000)
      const item = job.items[0]
      return { id: job.id, status: item.status, source: item.source, result: item.result }
    }

    await t.test('every result carries its check, with the shape of the API', async (t) => {
      const job = await classify(`NCM-SHAPE-${profile.name.toUpperCase()}`)
      t.equal(job.status, 'DONE')
      const check = job.result.ncm_check
      t.ok(['VALID', 'UNKNOWN', 'EXPIRED', 'NOT_LEAF'].includes(check.status))
      t.ok(Array.isArray(check.path))
      t.equal(job.result.correction, null)
      const list = await stack.api('GET', `/classifications?job_id=${job.id}`, { token })
      t.same(list.body.items[0].ncm_check, check, 'a list carries the same check')
      const one = await stack.api('GET', `/partnumbers/NCM-SHAPE-${profile.name.toUpperCase()}`, { token })
      t.equal(one.status, 200)
    })

    await t.test('a result with a VALID code is accepted, with the official description, path and IPI', async (t) => {
      const job = await classify(`NCM-VALID-${profile.name.toUpperCase()}`)
      t.equal(job.status, 'DONE')
      if (real) t.equal(job.result.ncm, '85423190', 'the real server\'s fake agent answers 85423190')
      t.equal(job.result.status, 'ACTIVE')
      t.same(job.result.review_reasons, [])
      const check = job.result.ncm_check
      t.equal(check.status, 'VALID')
      t.type(check.table_version, 'string')
      t.ok(check.description, 'the official description')
      t.ok(check.path.length >= 2, 'chapter to item')
      t.equal(check.path.at(-1).code.replace(/\D/g, ''), job.result.ncm, 'the path ends at the item')
      t.notMatch(JSON.stringify(check), /<[a-z/][^>]*>/i, 'HTML stripped')
      t.ok(check.ipi === null || typeof check.ipi === 'number')
    })

    // The real server's fake agent always answers 85423190, and scenarios are the contract simulator's.
    if (!real) await t.test('a result with a code the table does not know waits for review (ncm_unknown)', async (t) => {
      const pn = 'NCM-UNKNOWN-1'
      await stack.scenario(pn, { result: { ncm: UNKNOWN_NCM } })
      const job = await classify(pn)
      t.equal(job.status, 'DONE')
      t.equal(job.result.ncm, UNKNOWN_NCM)
      t.equal(job.result.status, 'PENDING')
      t.same(job.result.review_reasons.map((r: any) => r.code), ['ncm_unknown'])
      t.equal(job.result.ncm_check.status, 'UNKNOWN')
      const queue = await stack.api('GET', '/classifications?status=PENDING', { token })
      t.ok(queue.body.items.some((c: any) => c.id === job.result.id), 'in the review queue')
      // Never answered from history: the next request goes to the AI server.
      await stack.scenario(pn, {})
      const again = await classify(pn)
      t.equal(again.source, 'AI')
    })

    if (!real) await t.test('a batch\'s items are checked too', async (t) => {
      await stack.scenario('NCM-BATCH-1', { result: { ncm: UNKNOWN_NCM } })
      const started = await stack.api('POST', '/classifications/batch', { token, body: { partnumbers: [{ partnumber: 'NCM-BATCH-1' }, { partnumber: 'NCM-BATCH-2' }] } })
      t.equal(started.status, 202)
      const job = await finished(started.body.id)
      for (const item of job.items) {
        t.equal(item.status, 'DONE')
        t.equal(item.result.status, 'PENDING', `${item.partnumber} waits for review`)
        t.ok(item.result.review_reasons.some((r: any) => r.code === 'ncm_unknown'))
      }
      const ok = await stack.api('POST', '/classifications/batch', { token, body: { partnumbers: [{ partnumber: 'NCM-BATCH-3' }, { partnumber: 'NCM-BATCH-4' }] } })
      const okJob = await finished(ok.body.id)
      for (const item of okJob.items) t.same([item.result.status, item.result.ncm_check.status], ['ACTIVE', 'VALID'], item.partnumber)
    })

    await t.test('an accepted classification whose code is no longer VALID is not served from history', async (t) => {
      const pn = `NCM-HISTORY-${profile.name.toUpperCase()}`
      const first = await classify(pn)
      t.equal(first.result.status, 'ACTIVE')
      t.equal((await classify(pn)).source, 'HISTORY', 'a VALID accepted code answers from history')
      // An old accepted result whose code the current table does not know (as after a table update).
      await stack.db.query('UPDATE classifications SET ncm = $2 WHERE id = $1', [first.result.id, UNKNOWN_NCM])
      await new Promise((resolve) => setTimeout(resolve, 10_100)) // the readers' cache (NCM_CHECK_TTL_MS)
      const next = await classify(pn)
      t.equal(next.source, 'AI', 'sent to the AI server again')
    })

    await t.test('exports carry the check status, the official description and the IPI rate, at the end', async (t) => {
      const job = await classify(`NCM-EXPORT-${profile.name.toUpperCase()}`)
      const csv = await stack.api('GET', `/jobs/${job.id}/results.csv`, { token })
      t.equal(csv.status, 200)
      const text = typeof csv.body === 'string' ? csv.body : String(csv.body)
      const [header, row] = text.replace(/^\uFEFF/, '').trim().split('\r\n')
      t.match(header, /"Mensagem do servidor";"Verificação NCM";"Descrição oficial NCM";"Alíquota IPI \(%\)"$/)
      t.match(row, /;"VALID";"[^"]+";(\d+(,\d+)?)?$/)
      const json = await stack.api('GET', `/jobs/${job.id}/results.json`, { token })
      const r = json.body.results[0]
      t.equal(r.ncm_check_status, 'VALID')
      t.equal(r.ncm_official_description, job.result.ncm_check.description)
      t.equal(r.ipi, job.result.ncm_check.ipi)
    })

    await t.test('PATCH {ncm}: only to a VALID code; records who, when and the previous code', async (t) => {
      const pn = `NCM-FIX-${profile.name.toUpperCase()}`
      const job = await classify(pn, true)
      // A result held back only by its NCM check, and one held back for another reason as well.
      const onlyNcm = await storeClassification(stack.db, job.id, `${pn}-A`, fields(UNKNOWN_NCM), { reasons: ['ncm_unknown'], answeredPartnumber: null })
      const both = await storeClassification(stack.db, job.id, `${pn}-B`, fields(UNKNOWN_NCM), { reasons: ['partnumber_mismatch', 'ncm_unknown'], answeredPartnumber: 'OTHER' })

      const empty = await stack.api('PATCH', `/classifications/${onlyNcm}`, { token, body: {} })
      t.equal(empty.status, 400)
      const malformed = await stack.api('PATCH', `/classifications/${onlyNcm}`, { token, body: { ncm: '8542' } })
      t.equal(malformed.status, 400)
      const refused = await stack.api('PATCH', `/classifications/${onlyNcm}`, { token, body: { ncm: UNKNOWN_NCM } })
      t.equal(refused.status, 422)
      t.equal(refused.body.code, 'ncm_not_valid')
      t.equal(refused.body.ncm_check_status, 'UNKNOWN')
      const other = await stack.createUser(`ncm.other.${profile.name}@nexa.test`)
      t.equal((await stack.api('PATCH', `/classifications/${onlyNcm}`, { token: other.token, body: { ncm: '85423190' } })).status, 404, 'someone else\'s result')
      const { rows: untouched } = await stack.db.query('SELECT ncm, status, corrected_at FROM classifications WHERE id = $1', [onlyNcm])
      t.same(untouched[0], { ncm: UNKNOWN_NCM, status: 'PENDING', corrected_at: null }, 'nothing written')

      const fixed = await stack.api('PATCH', `/classifications/${onlyNcm}`, { token, body: { ncm: '8542.31.90', expected_status: 'PENDING' } })
      t.equal(fixed.status, 200)
      t.equal(fixed.body.ncm, '85423190')
      t.equal(fixed.body.status, 'ACTIVE', 'held back only by its code: the correction accepts it')
      t.same(fixed.body.review_reasons.map((r: any) => r.code), ['ncm_unknown'], 'why it waited is kept')
      t.equal(fixed.body.ncm_check.status, 'VALID')
      t.equal(fixed.body.correction.previous_ncm, UNKNOWN_NCM)
      t.equal(fixed.body.correction.corrected_by, user.id)
      t.ok(fixed.body.correction.corrected_at)
      const { rows: trail } = await stack.db.query('SELECT previous_ncm, ncm, corrected_by FROM classification_corrections WHERE classification_id = $1', [onlyNcm])
      t.same(trail, [{ previous_ncm: UNKNOWN_NCM, ncm: '85423190', corrected_by: user.id }])

      const stillPending = await stack.api('PATCH', `/classifications/${both}`, { token, body: { ncm: '85423190' } })
      t.equal(stillPending.status, 200)
      t.equal(stillPending.body.status, 'PENDING', 'another reason too: it waits for a decision')
      t.equal(stillPending.body.correction.previous_ncm, UNKNOWN_NCM)
      const accepted = await stack.api('PATCH', `/classifications/${both}`, { token, body: { ncm: '85423190', status: 'ACTIVE' } })
      t.equal(accepted.body.status, 'ACTIVE')
      t.equal(accepted.body.correction.previous_ncm, UNKNOWN_NCM, 'the same code again is no new correction')
    })
  })
}

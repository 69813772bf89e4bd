import t0 from 'tap'
import { parse } from 'csv-parse/sync'
import { request } from 'undici'
import { startServices, startStack, eventually } from '../helpers/stack.js'
import { openEventStream } from '../helpers/sse.js'

const { test } = t0
const services = await startServices()
// No short JOB_DEADLINE here: on a busy machine a batch of any test could go quiet for that long.
// The deadline's own test brings it (a second instance, open only while that test runs).
const stack = await startStack(services, { simulator: { stepMs: 15 }, env: { AI_BATCH_SIZE: '50' } })
// The waits below are bounds on a failure, not paces: on a busy machine a batch can take a minute.
t0.teardown(async () => { await stack.close(); await services.stop() })
const token = await stack.login()

const batch = (body: unknown) => stack.api('POST', '/classifications/batch', { token, body })
const finished = (id: string) => eventually(async () => {
  const job = await stack.api('GET', `/jobs/${id}`, { token })
  return ['DONE', 'FAILED'].includes(job.body.status) ? job.body : undefined
}, 60_000)

test('a batch of 3 streams a snapshot, progress, one item event per part number and done with counts', async (t) => {
  await stack.scenario('BC847BLT1G', { stepMs: 100 })
  const res = await batch({ partnumbers: [{ partnumber: 'BC847BLT1G' }, { partnumber: 'CL10C330JB8NNNC' }, { partnumber: 'lm358n', description: 'op amp' }, { partnumber: 'BC847BLT1G ' }] })
  t.equal(res.status, 202)
  t.equal(res.body.kind, 'BATCH')
  t.equal(res.body.items.length, 3, 'one item per distinct part number')
  t.same(res.body.counts, { total: 3, done: 0, failed: 0, pending: 3 })
  const stream = await openEventStream(`${stack.url}${res.body.events_url}`)
  const snapshot = await stream.next('snapshot')
  t.equal(snapshot.data.items.length, 3)
  const done = await stream.next('done', 60_000)
  t.same(done.data.counts, { total: 3, done: 2, failed: 1, pending: 0 }, 'LM358N fails, as in the contract\'s batch example')
  await stream.ended
  const items = stream.received.events.filter((e) => e.event === 'item')
  // Items finished before the stream opened are in its snapshot; every other one comes as an event.
  const finishedAtSnapshot = snapshot.data.items.filter((i: any) => i.status !== 'PENDING').map((i: any) => i.partnumber)
  t.same([...finishedAtSnapshot, ...items.map((e) => e.data.partnumber)].sort(), ['BC847BLT1G', 'CL10C330JB8NNNC', 'LM358N'], 'each item exactly once')
  // The AI's progress reaches the user whenever the stream opened: what the AI said before is in the
  // snapshot's progress, what it said after comes as `progress` events. Either way the last
  // progress the user sees is the AI's last progress message.
  const progress = stream.received.events.filter((e) => e.event === 'progress')
  const aiSays = /^(Iniciando classificacao de 3 partnumbers|Classificando partnumber (BC847BLT1G|CL10C330JB8NNNC|LM358N))$/
  for (const e of progress) t.match(e.data, { job_id: res.body.id, total: 3, message: aiSays }, 'a progress event passes the AI\'s message on')
  t.equal(progress.at(-1)?.data.message ?? snapshot.data.progress?.message, 'Classificando partnumber LM358N',
    `the user sees the AI's latest progress (${progress.length} progress events after the snapshot)`)
  const final = (await stack.api('GET', `/jobs/${res.body.id}`, { token })).body.items
  const lm = final.find((i: any) => i.partnumber === 'LM358N')
  t.equal(lm.status, 'FAILED')
  t.equal(lm.error, 'Erro ao processar partnumberLM358N')
  t.equal(final.find((i: any) => i.partnumber === 'CL10C330JB8NNNC').result.ncm, '85322410')
  const calls = (await stack.simulatorRequests()).filter((r) => r.endpoint?.includes('batch') && r.body?.partnumbers?.LM358N)
  t.equal(calls.length, 1, 'one AI call')
  t.same(Object.keys(calls[0]!.body.partnumbers), ['BC847BLT1G', 'CL10C330JB8NNNC', 'LM358N'], 'the contract\'s object keyed by part number')
  t.equal(calls[0]!.body.partnumbers.LM358N.description, 'op amp')
  const message = await eventually(() => stack.taskResults.find((m) => m.job_id === res.body.id))
  t.equal(message.status, 'done')
  t.same(message.partnumbers, ['BC847BLT1G', 'CL10C330JB8NNNC', 'LM358N'])
  await new Promise((r) => setTimeout(r, 200))
  t.equal(stack.taskResults.filter((m) => m.job_id === res.body.id).length, 1, 'one task_results message for the batch')
})

test('items with an accepted classification are answered from history; a fully known batch needs no AI call', async (t) => {
  const before = (await stack.simulatorRequests()).length
  const res = await batch({ partnumbers: [{ partnumber: 'BC847BLT1G' }, { partnumber: 'CL10C330JB8NNNC' }] })
  t.equal(res.body.status, 'DONE')
  t.ok(res.body.items.every((i: any) => i.source === 'HISTORY' && i.status === 'DONE'))
  t.equal((await stack.simulatorRequests()).length, before)
  const mixed = await batch({ partnumbers: [{ partnumber: 'BC847BLT1G' }, { partnumber: 'NEW-PART-001' }] })
  const job = await finished(mixed.body.id)
  t.same(job.items.map((i: any) => [i.partnumber, i.source]), [['BC847BLT1G', 'HISTORY'], ['NEW-PART-001', 'AI']])
})

test('an item failure in the middle fails only that item; the batch goes on', async (t) => {
  await stack.scenario('FAIL-A1', { failItems: ['FAIL-A2'], failWithoutName: ['FAIL-A3'] })
  const res = await batch({ partnumbers: ['FAIL-A1', 'FAIL-A2', 'FAIL-A3', 'FAIL-A4'].map((partnumber) => ({ partnumber })) })
  const job = await finished(res.body.id)
  t.equal(job.status, 'DONE')
  t.same(job.items.map((i: any) => [i.partnumber, i.status]), [['FAIL-A1', 'DONE'], ['FAIL-A2', 'FAILED'], ['FAIL-A3', 'FAILED'], ['FAIL-A4', 'DONE']])
  t.match(job.items[1].error, /FAIL-A2/)
  t.same(job.counts, { total: 4, done: 2, failed: 2, pending: 0 })
})

test('done with items never answered fails those items with the reason', async (t) => {
  await stack.scenario('EARLY-1', { stopAfterItems: 1, doneEarly: true })
  const res = await batch({ partnumbers: [{ partnumber: 'EARLY-1' }, { partnumber: 'EARLY-2' }] })
  const job = await finished(res.body.id)
  t.equal(job.status, 'DONE')
  t.equal(job.items[1].status, 'FAILED')
  t.match(job.items[1].error, /without answering/)
})

test('a batch whose AI server stops answering ends by the deadline; finished items keep their results', async (t) => {
  await stack.scenario('STOPS-1', { stopAfterItems: 1 })
  const res = await batch({ partnumbers: [{ partnumber: 'STOPS-1' }, { partnumber: 'STOPS-2' }, { partnumber: 'STOPS-3' }] })
  const stream = await openEventStream(`${stack.url}${res.body.events_url}`)
  // The AI server has answered STOPS-1 and says nothing more; only then does an instance with a
  // 2 s deadline join (same data, same AI server), so the deadline falls on that silence alone.
  await eventually(async () => (await stack.api('GET', `/jobs/${res.body.id}`, { token })).body.counts.done === 1, 60_000)
  const strict = await startStack(services, { databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl, env: { JOB_DEADLINE: '2s', JOB_SWEEP_INTERVAL: '200ms' } })
  t.teardown(() => strict.close())
  const failed = await stream.next('failed', 60_000)
  t.match(failed.data.error, /Timed out/)
  t.same(failed.data.counts, { total: 3, done: 1, failed: 2, pending: 0 })
  const job = await finished(res.body.id)
  t.same(job.items.map((i: any) => i.status), ['DONE', 'FAILED', 'FAILED'])
})

test('200 items go out in chunks of AI_BATCH_SIZE and all finish; a reconnect mid-way gets every finished item', async (t) => {
  const partnumbers = Array.from({ length: 200 }, (_, i) => ({ partnumber: `BULK-${String(i).padStart(3, '0')}` }))
  const started = Date.now()
  const res = await batch({ partnumbers })
  t.equal(res.status, 202)
  const first = await openEventStream(`${stack.url}${res.body.events_url}`)
  await first.next('snapshot')
  for (let i = 0; i < 5; i++) await first.next('item', 60_000)
  first.close()
  const again = await openEventStream(`${stack.url}${res.body.events_url}`)
  const snapshot = await again.next('snapshot')
  const finishedInSnapshot = snapshot.data.items.filter((i: any) => i.status !== 'PENDING').length
  t.ok(finishedInSnapshot >= 5, `the reconnect's snapshot holds the ${finishedInSnapshot} items finished so far`)
  const done = await again.next('done', 120_000)
  t.same(done.data.counts, { total: 200, done: 200, failed: 0, pending: 0 })
  const itemEvents = again.received.events.filter((e) => e.event === 'item').length
  t.equal(finishedInSnapshot + itemEvents, 200, 'snapshot plus item events cover every item exactly once')
  t.comment(`200-item batch: ${Date.now() - started} ms from POST to done`)
  const calls = (await stack.simulatorRequests()).filter((r) => r.body?.partnumbers?.['BULK-000'] || r.body?.partnumbers?.['BULK-199'])
  t.equal(calls.length, 2)
  const { rows } = await stack.db.query('SELECT count(*)::int AS n FROM job_chunks WHERE job_id = $1', [res.body.id])
  t.equal(rows[0].n, 4, '200 items in 4 chunks of 50')

  await t.test('the CSV opens in a Portuguese spreadsheet: BOM, semicolons, decimal comma', async (t) => {
    const csv = await request(`${stack.url}/jobs/${res.body.id}/results.csv`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(csv.statusCode, 200)
    t.match(csv.headers['content-type'], /^text\/csv/)
    const bytes = Buffer.from(await csv.body.arrayBuffer())
    t.same([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 BOM')
    const records = parse(bytes.subarray(3).toString('utf8'), { delimiter: ';', columns: true }) as Array<Record<string, string>>
    t.equal(records.length, 200)
    t.same(Object.keys(records[0]!), ['Part number', 'NCM', 'Ex', 'Descrição', 'Fabricante', 'País', 'Confiança', 'Situação', 'Erro',
      'Situação da classificação', 'Motivos de revisão', 'Part number respondido', 'Mensagem do servidor',
      'Verificação NCM', 'Descrição oficial NCM', 'Alíquota IPI (%)'])
    t.match(records[0]!.NCM, /^\d{4}\.\d{2}\.\d{2}$/)
    t.match(records[0]!['Confiança'], /^0,\d+$/)
    t.equal(records[0]!['Situação'], 'DONE')
    const json = await stack.api('GET', `/jobs/${res.body.id}/results.json`, { token })
    t.equal(json.body.results.length, 200)
    t.equal(typeof json.body.results[0].confidence, 'number')
  })
})

test('bad batch input is refused and changes nothing', async (t) => {
  const count = async () => (await stack.db.query('SELECT count(*)::int AS n FROM jobs')).rows[0].n
  const before = await count()
  for (const [why, body, code] of [
    ['empty list', { partnumbers: [] }, 400],
    ['blank part numbers only', { partnumbers: [{ partnumber: '  ' }] }, 400],
    ['string items', { partnumbers: ['BC847'] }, 400],
    ['unknown document', { document_id: '00000000-0000-4000-8000-000000000000' }, 404],
    ['both shapes mixed', { partnumbers: [{ partnumber: 'X1' }], extra: true }, 400],
  ] as const) {
    const res = await batch(body)
    t.equal(res.status, code, why)
    t.ok(res.body.code, `${why}: JSON error`)
  }
  t.equal(await count(), before)
})

test('BATCH_MAX_ITEMS limits distinct part numbers', async (t) => {
  const limited = await startStack(services, { databaseUrl: stack.databaseUrl, simulatorUrl: stack.simulatorUrl, env: { BATCH_MAX_ITEMS: '3' } })
  t.teardown(() => limited.close())
  const res = await limited.api('POST', '/classifications/batch', { token, body: { partnumbers: ['A1', 'A2', 'A3', 'A4'].map((partnumber) => ({ partnumber })) } })
  t.equal(res.status, 400)
  t.equal(res.body.code, 'too_many_items')
})

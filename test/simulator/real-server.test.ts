import { t as tap, test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { REAL_SERVER_COMMIT } from '../../src/simulator/real-server-jobs.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { ChannelRecorder, startSimulator } from './harness.js'

// The simulator's real-server profile: what Titus-System/Nexa-AI-Agents does at REAL_SERVER_COMMIT.
// Each test names the file and function of that repository whose behaviour it checks; the raw
// messages below are those the real code published in a peer run (test/peer/README.md).

const redis = await startRedisServer()
tap.teardown(() => redis.stop())

const SINGLE = '/process/single_partnumber'
const BATCH = '/process/batch_partnumbers'
// One second of the real server's sleeps, and the length of an agent run, here.
const SECOND_MS = 5
const AGENT_MS = 150

const realServer = (variant: 'as-written' | 'as-intended' = 'as-written') =>
  ({ profile: 'real-server' as const, realServer: { variant, agentMs: AGENT_MS, secondMs: SECOND_MS } })

const items = (...partnumbers: string[]) =>
  Object.fromEntries(partnumbers.map((partnumber) => [partnumber, { partnumber, description: null, manufacturer: null, supplier: null }]))

type Message = { status: string; job_id: string | null; progress?: { current: number; total: number; message: string }; error?: string | null; result?: Record<string, unknown>; single_classification?: unknown; current?: number }

async function post(url: string, body: string, contentType = 'application/json') {
  const response = await request(url, { method: 'POST', headers: { 'content-type': contentType }, body })
  return { status: response.statusCode, contentType: String(response.headers['content-type']), text: await response.body.text() }
}

test(`the profile models ${REAL_SERVER_COMMIT.slice(0, 7)}`, async (t) => {
  t.match(REAL_SERVER_COMMIT, /^c0872a7[0-9a-f]{33}$/)
})

// app/jobs.py start_single_classification_job: progress 1/5 sent without job_id, then
// manager_agent(...) -> agents/agents/manager_agent.py execute(): `data["partnumber"]` on the
// SingleClassificationRequest model raises TypeError, caught and published by
// send_failed_processing(channel, str(e)), again without job_id. The job thread publishes both
// before the route's `return jsonify(...), 202` reaches the client.
test('single job, any part number outside the demo: progress 1/5, then failed, both job_id null and before the 202', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer())
  const progress = await ChannelRecorder.open(t, redis.url)
  const answer = await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'LM358N' })
  t.equal(answer.status, 202)
  t.match(answer.json(), { job_id: /^job-[0-9a-f-]{36}$/ })
  t.equal(answer.text, `${answer.text.trim()}\n`, "Flask's jsonify ends with a newline")
  t.equal(progress.raw.length, 2, 'both messages arrived before the answer')
  t.same(progress.raw, [
    '{"status": "processing", "job_id": null, "progress": {"current": 1, "total": 5, "message": "Analisando dados no servidor Nexa-IA"}}',
    '{"status": "failed", "job_id": null, "error": "\'SingleClassificationRequest\' object is not subscriptable"}',
  ])
  t.equal(await progress.arrivingWithin(AGENT_MS * 2), 0, 'nothing else, ever')
})

// app/jobs.py start_single_classification_job -> run_demo for a key of app/pre_proc.py, then
// app/simul.py run_single_simul: progress i/5 for i = 0..5 (job_id None), time.sleep(4) after
// each, time.sleep(5), then send_done_classification(channel, result, job_id): a full Result.
test('single job, a demo part number: progress 0..5 of 5 (job_id null) 4 s apart, 5 s more, then done with job_id and a full result', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer())
  const progress = await ChannelRecorder.open(t, redis.url)
  const startedAt = performance.now()
  const answer = await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'BC847BLT1G' })
  const { job_id: jobId } = answer.json() as { job_id: string }
  const messages = (await progress.received(7)) as Message[]
  t.same(messages.slice(0, 6).map((m) => [m.job_id, m.progress!.current, m.progress!.total]), [0, 1, 2, 3, 4, 5].map((i) => [null, i, 5]))
  t.equal(messages[0]!.progress!.message, 'Pedido de análise recebido')
  t.match(progress.raw[0], /"Pedido de an\\u00e1lise recebido"/, 'non-ASCII escaped as Python json.dumps does')
  t.match(messages[6], { status: 'done', job_id: jobId, result: { partnumber: 'BC847BLT1G', ncm: '85412120', exception: '00', nve: null, confidence_score: 0.95 } })
  t.same(Object.keys(messages[6]!.result!), ['partnumber', 'ncm', 'description', 'exception', 'nve', 'fabricante', 'endereco', 'pais', 'confidence_score'])
  // Lower bounds from the request (arrivals may bunch up, sends cannot come earlier).
  const after = progress.arrivedAt.map((at) => at - startedAt)
  t.ok([1, 2, 3, 4, 5].every((i) => after[i]! >= 4 * i * SECOND_MS), `progress i after 4i s: ${after.map(Math.round)}`)
  t.ok(after[6]! >= (6 * 4 + 5) * SECOND_MS, 'the result after 6 x 4 + 5 s')
})

// app/jobs.py start_batch_classification_job: `current = 1`, never incremented; progress without
// job_id; for each item manager_agent(channel, job_id, info) -> execute() runs the agent (no
// message meanwhile: the progress hook report.send_progress is commented out), then
// agents/hooks/report.py Report.send_successful_response calls
// send_done_classification(self.channel, self.job_id, result) against app/extensions.py's
// (channel, result, job_id): DoneProcessing refuses a dict for job_id and a str for result, the
// ValidationError reaches the loop's except, which publishes f"Erro ao processar partnumber{pn}".
test('batch, as written: current stays 1, each item silent for the agent run then failed "Erro ao processar partnumber<PN>", then done', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer())
  const progress = await ChannelRecorder.open(t, redis.url)
  const startedAt = performance.now()
  const answer = await sim.call('POST', BATCH, { progress_channel: progress.channel, partnumbers: items('LM358N', 'BC847BLT1G', 'FAIL10K') })
  t.equal(answer.status, 202)
  const { job_id: jobId } = answer.json() as { job_id: string }
  t.equal(progress.raw.length, 2, 'the start and the first item\'s progress came before the answer; then the agent runs')
  const messages = (await progress.received(8)) as Message[]
  const processing = (message: string) => ({ status: 'processing', job_id: null, progress: { current: 1, total: 3, message } })
  t.same(messages, [
    processing('Iniciando Classificação con Nexa IA. Aguarde pelos resultados.'),
    processing('[1] Processando partnumber LM358N com Nexa IA'),
    { status: 'failed', job_id: jobId, error: 'Erro ao processar partnumberLM358N' },
    processing('[1] Processando partnumber BC847BLT1G com Nexa IA'),
    { status: 'failed', job_id: jobId, error: 'Erro ao processar partnumberBC847BLT1G' },
    processing('[1] Processando partnumber FAIL10K com Nexa IA'),
    { status: 'failed', job_id: jobId, error: 'Erro ao processar partnumberFAIL10K' },
    { status: 'done', job_id: jobId },
  ])
  // Nothing comes between an item's progress and its failure (above) while its agent runs.
  for (const k of [1, 2, 3]) t.ok(progress.arrivedAt[2 * k]! - startedAt >= k * AGENT_MS, `item ${k} failed after ${k} agent runs`)
  t.equal(await progress.arrivingWithin(50), 0)
})

// agents/agents/manager_agent.py execute(): `data["partnumber"]` raises before the agent for a
// value of `partnumbers` that is not a dict holding that key (BatchClassificationRequest takes
// Dict[str, Any]); the agent itself may raise (litellm's timeout): both end in the loop's except.
test('batch: a value that is not a dict with "partnumber" fails at once; an agent that raises fails after its run', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer())
  const progress = await ChannelRecorder.open(t, redis.url)
  const partnumbers = { 'A-1': 'just text', 'B-2': { description: 'no partnumber key' }, 'C-AGENTERR-SLOW10': { partnumber: 'C-AGENTERR-SLOW10' } }
  const startedAt = performance.now()
  const answer = await sim.call('POST', BATCH, { progress_channel: progress.channel, partnumbers })
  const { job_id: jobId } = answer.json() as { job_id: string }
  t.equal(progress.raw.length, 6, 'the first two items failed before the answer')
  const messages = (await progress.received(8)) as Message[]
  t.same(messages.filter((m) => m.status !== 'processing'), [
    { status: 'failed', job_id: jobId, error: 'Erro ao processar partnumberA-1' },
    { status: 'failed', job_id: jobId, error: 'Erro ao processar partnumberB-2' },
    { status: 'failed', job_id: jobId, error: 'Erro ao processar partnumberC-AGENTERR-SLOW10' },
    { status: 'done', job_id: jobId },
  ])
  t.ok(progress.arrivedAt[6]! - startedAt >= 10 * SECOND_MS, 'SLOW10: the agent ran 10 s before raising')
})

// app/jobs.py start_batch_classification_job: `if total == 0:` send_failed_processing(...,
// job_id) and `return`, before the send_done_job at the end.
test('empty batch: 202, then failed with job_id, and no done ever', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer())
  const progress = await ChannelRecorder.open(t, redis.url)
  const answer = await sim.call('POST', BATCH, { progress_channel: progress.channel, partnumbers: {} })
  t.equal(answer.status, 202)
  const { job_id: jobId } = answer.json() as { job_id: string }
  t.same(progress.messages, [{ status: 'failed', job_id: jobId, error: 'Nenhum partnumber encontrado para iniciar job de classificação.' }], 'published before the answer')
  t.equal(await progress.arrivingWithin(AGENT_MS), 0)
})

// app/routes.py: process_single_partnumber answers a ValidationError with 400, process_batch
// with `return jsonify({"error": "payload inválido"})`, status 200. request.get_json() (Flask 3 /
// Werkzeug 3) raises UnsupportedMediaType (415) unless the Content-Type is JSON, and a plain
// BadRequest (400) for a body that is not JSON: HTML pages, not JSON.
test('answers of app/routes.py: 400 and 200 {"error": "payload inválido"}, HTML 415 and 400', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer())
  const progress = await ChannelRecorder.open(t, redis.url)
  const invalid = '{"error":"payload inv\\u00e1lido"}\n'
  const cases: Array<[string, string, number]> = [
    [SINGLE, JSON.stringify({ partnumber: 'BC847BLT1G' }), 400],
    [SINGLE, JSON.stringify({ progress_channel: progress.channel, partnumber: 42 }), 400],
    [SINGLE, 'null', 400],
    [BATCH, JSON.stringify({ progress_channel: progress.channel, partnumbers: ['BC847BLT1G'] }), 200],
    [BATCH, JSON.stringify({ partnumbers: items('BC847BLT1G') }), 200],
    [BATCH, 'null', 200],
  ]
  for (const [endpoint, body, status] of cases) {
    const answer = await post(`${sim.url}${endpoint}`, body)
    t.same([answer.status, answer.contentType, answer.text], [status, 'application/json', invalid], `${endpoint} ${body}`)
  }
  for (const endpoint of [SINGLE, BATCH]) {
    const notJson = await post(`${sim.url}${endpoint}`, JSON.stringify({ progress_channel: progress.channel, partnumber: 'X' }), 'text/plain')
    t.equal(notJson.status, 415)
    t.match(notJson.contentType, /^text\/html/)
    t.match(notJson.text, /<title>415 Unsupported Media Type<\/title>/)
    const broken = await post(`${sim.url}${endpoint}`, '{"progress_channel": ')
    t.equal(broken.status, 400)
    t.match(broken.text, /<title>400 Bad Request<\/title>/)
  }
  const empty = await post(`${sim.url}${SINGLE}`, JSON.stringify({ progress_channel: progress.channel, partnumber: '' }))
  t.equal(empty.status, 202, 'an empty part number is a valid str to pydantic')
  await sleep(50)
  t.same((progress.messages as Message[]).map((m) => m.status), ['processing', 'failed'], 'only that job published')
})

// As intended (Report.send_successful_response with its arguments in order): execute()
// publishes `done` with DoneProcessing(result={"description": response}) on report.channel for
// every item, then returns the agent's text, which start_batch_classification_job sends as
// partial_result's single_classification: a str (PartialResult allows SingleClassification | str).
test('batch, as intended: done with a description-only result for every item, mid-batch, then partial_result with a string', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer('as-intended'))
  const progress = await ChannelRecorder.open(t, redis.url)
  const answer = await sim.call('POST', BATCH, { progress_channel: progress.channel, partnumbers: items('PN-1', 'PN-2-ALT', 'PN-3-NOPN') })
  const { job_id: jobId } = answer.json() as { job_id: string }
  const messages = (await progress.received(11)) as Message[]
  t.same(messages.map((m) => m.status), ['processing', 'processing', 'done', 'partial_result', 'processing', 'done', 'partial_result', 'processing', 'done', 'partial_result', 'done'])
  const itemDone = messages[2]!
  t.equal(itemDone.job_id, jobId)
  t.same(Object.keys(itemDone.result!), ['partnumber', 'ncm', 'description', 'exception', 'nve', 'fabricante', 'endereco', 'pais', 'confidence_score'])
  t.match(itemDone.result, { partnumber: null, ncm: null, exception: null, fabricante: null, confidence_score: null, description: /"part_number":"PN-1"/ })
  t.match(messages[3], { job_id: jobId, current: 1, total: 3, message: 'Classificação encontrada para o partnumber PN-1' })
  t.type(messages[3]!.single_classification, 'string')
  t.equal(messages[3]!.single_classification, itemDone.result!.description, 'the same text')
  t.match(messages[6]!.single_classification, /"part_number":"PN-2-ALT-ALT"/, 'ALT: the answer names another part number, inside the text')
  t.match(messages[9]!.single_classification, /"part_number":null/, 'NOPN: the answer names none')
  t.same(messages[10], { status: 'done', job_id: jobId })
})

// agents/agents/manager_agent.py: `report = Report()` at module level; execute() sets
// report.channel and report.job_id for whichever job calls it last, and every job thread of the
// process shares them. As intended, a job's `done` goes out on the channel (and with the job id)
// of the job that called execute() most recently: a batch item that started later, or a single
// job (execute() sets both before it fails on `data["partnumber"]`).
test('as intended: the shared Report sends one job\'s done to the job that last called execute(), with that job\'s id', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer('as-intended'))
  const first = await ChannelRecorder.open(t, redis.url)
  const second = await ChannelRecorder.open(t, redis.url)
  const single = await ChannelRecorder.open(t, redis.url)
  const a = (await sim.call('POST', BATCH, { progress_channel: first.channel, partnumbers: items('A-SLOW30') })).json() as { job_id: string }
  await sleep(5 * SECOND_MS)
  const b = (await sim.call('POST', BATCH, { progress_channel: second.channel, partnumbers: items('B-SLOW60') })).json() as { job_id: string }
  await first.waitFor(4)
  await second.waitFor(6)
  const firstMessages = first.messages as Message[]
  const secondMessages = second.messages as Message[]
  t.same(firstMessages.map((m) => m.status), ['processing', 'processing', 'partial_result', 'done'], 'A never gets its own done-with-result')
  t.match(firstMessages[2], { job_id: a.job_id, single_classification: /"part_number":"A-SLOW30"/ })
  t.same(secondMessages.map((m) => m.status), ['processing', 'processing', 'done', 'done', 'partial_result', 'done'])
  t.match(secondMessages[2], { job_id: b.job_id, result: { description: /"part_number":"A-SLOW30"/ } }, "A's answer, on B's channel, with B's job id")
  t.match(secondMessages[3], { job_id: b.job_id, result: { description: /"part_number":"B-SLOW60"/ } })

  const c = await ChannelRecorder.open(t, redis.url)
  await sim.call('POST', BATCH, { progress_channel: c.channel, partnumbers: items('C-SLOW30') })
  const s = (await sim.call('POST', SINGLE, { progress_channel: single.channel, partnumber: 'NOT-A-DEMO' })).json() as { job_id: string }
  await single.waitFor(3)
  t.same((single.messages as Message[]).map((m) => m.status), ['processing', 'failed', 'done'])
  t.match(single.messages[2], { job_id: s.job_id, result: { description: /"part_number":"C-SLOW30"/ } }, "the batch's answer reaches the single job's channel after its failure")
})

// The same two overlapping batches as written: Report.send_successful_response raises before
// publishing, so the shared Report carries nothing from one job to another.
test('as written: overlapping jobs publish only on their own channels', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer())
  const first = await ChannelRecorder.open(t, redis.url)
  const second = await ChannelRecorder.open(t, redis.url)
  const a = (await sim.call('POST', BATCH, { progress_channel: first.channel, partnumbers: items('A-SLOW30') })).json() as { job_id: string }
  await sleep(5 * SECOND_MS)
  const b = (await sim.call('POST', BATCH, { progress_channel: second.channel, partnumbers: items('B-SLOW60') })).json() as { job_id: string }
  await first.waitFor(4)
  await second.waitFor(4)
  t.same((first.messages as Message[]).map((m) => [m.status, m.job_id]), [['processing', null], ['processing', null], ['failed', a.job_id], ['done', a.job_id]])
  t.same((second.messages as Message[]).map((m) => [m.status, m.job_id]), [['processing', null], ['processing', null], ['failed', b.job_id], ['done', b.job_id]])
  t.equal(await second.arrivingWithin(50), 0)
})

test('close() ends the real-server jobs: nothing is published afterwards', async (t) => {
  const sim = await startSimulator(t, redis.url, { profile: 'real-server', realServer: { agentMs: 60_000 } })
  const progress = await ChannelRecorder.open(t, redis.url)
  await sim.call('POST', BATCH, { progress_channel: progress.channel, partnumbers: items('X-1', 'X-2') })
  const closing = Date.now()
  await sim.app.close()
  t.ok(Date.now() - closing < 1000, 'close is prompt')
  t.equal(await progress.arrivingWithin(50), 0)
  t.equal(progress.raw.length, 2, 'only what came before the first agent run')
})

test('/_sim/requests logs what the real-server profile received; it has no scenarios', async (t) => {
  const sim = await startSimulator(t, redis.url, realServer())
  await sim.call('POST', BATCH, { progress_channel: 'progress-log', partnumbers: {} })
  const { requests } = (await sim.call('GET', '/_sim/requests')).json() as { requests: Array<{ endpoint: string; body: unknown }> }
  t.same(requests.map(({ endpoint, body }) => ({ endpoint, body })), [{ endpoint: BATCH, body: { progress_channel: 'progress-log', partnumbers: {} } }])
  t.equal((await sim.call('PUT', '/_sim/scenarios/X', { start: 'reject' })).status, 404)
})

import { t as tap, test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { createMemoryBus } from '../../src/services/bus/memory-bus.js'
import { buildSimulator } from '../../src/simulator/app.js'
import { startRedisServer } from '../helpers/redis-server.js'
import { ChannelRecorder, httpCall, startSimulator } from './harness.js'

const redis = await startRedisServer()
// A root teardown (unlike after()) lets tap end the file while redis-server still runs.
tap.teardown(() => redis.stop())

const SINGLE = '/process/single_partnumber'
const BATCH = '/process/batch_partnumbers'

// The results of shared/contract/messages/, written out here so a change in the simulator cannot hide itself.
const BC847BLT1G = {
  partnumber: 'BC847BLT1G',
  ncm: '85412120',
  description: 'Transistor de silicio NPN de uso geral, encapsulamento SOT-23, corrente de coletor de ate 100 mA.',
  exception: '00',
  nve: null,
  fabricante: 'ONSEMI',
  endereco: '5701 North Pima Road, Scottsdale, Arizona, 85250, EUA',
  pais: 'CHINA, REPUBLICA POPULAR',
  confidence_score: 0.95,
}
const CL10C330JB8NNNC = {
  partnumber: 'CL10C330JB8NNNC',
  ncm: '85322410',
  description: 'Capacitor ceramico multicamadas (MLCC) de 33pF, 50V, C0G/NP0, 0603.',
  exception: '00',
  nve: null,
  fabricante: 'Samsung Electro-Mechanics',
  endereco: '150, Maeyeong-ro, Yeongtong-gu, Suwon-si, Gyeonggi-do',
  pais: 'Republica da Coreia',
  confidence_score: 0.98,
}

const processing = (current: number, total: number, message: string) => ({ status: 'processing', job_id: null, progress: { current, total, message } })
const STAGES_OF_2 = [
  processing(0, 2, 'Recebendo requisicao no servidor Nexa-IA'),
  processing(1, 2, 'Analisando dados no servidor Nexa-IA'),
  processing(2, 2, 'Finalizando classificacao'),
]
const batchItems = (...partnumbers: string[]) =>
  Object.fromEntries(partnumbers.map((partnumber) => [partnumber, { partnumber, description: null, manufacturer: null, supplier: null }]))

test('single job: progress 0..steps, then done with the contract result, then nothing', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 2, stepMs: 10 })
  const progress = await ChannelRecorder.open(t, redis.url)

  const answer = await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'BC847BLT1G', description: null })
  t.equal(answer.status, 202)
  const { job_id: jobId } = answer.json() as { job_id: string }
  t.match(jobId, /^job-[0-9a-f-]{36}$/)

  t.same(await progress.received(4), [...STAGES_OF_2, { status: 'done', job_id: jobId, result: BC847BLT1G }])
  t.equal(await progress.arrivingWithin(60), 0, 'a finished job publishes nothing more')
})

test('single job: LM358N, which fails inside batches, is classified on its own', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 0, stepMs: 5 })
  const progress = await ChannelRecorder.open(t, redis.url)
  await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'LM358N' })
  const [, done] = (await progress.received(2)) as [unknown, { status: string; result: Record<string, unknown> }]
  t.equal(done.status, 'done')
  t.match(done.result, { partnumber: 'LM358N', ncm: '85423990', fabricante: 'Texas Instruments' })
})

test('single job: scenario fail publishes failed with job_id null after failAfter steps, then nothing', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 5, stepMs: 10 })
  await sim.setScenario('NOPE-1', { outcome: 'fail', failAfter: 2 })
  const progress = await ChannelRecorder.open(t, redis.url)
  t.equal((await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'NOPE-1' })).status, 202)
  t.same(await progress.received(3), [
    processing(0, 5, 'Recebendo requisicao no servidor Nexa-IA'),
    processing(1, 5, 'Analisando dados no servidor Nexa-IA'),
    { status: 'failed', job_id: null, error: 'Partnumber nao encontrado na base de dados de simulacao' },
  ])
  t.equal(await progress.arrivingWithin(80), 0)
})

test('single job: scenario silent stops after silentAfter progress messages', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 5, stepMs: 10 })
  await sim.setScenario('quiet-1', { outcome: 'silent', silentAfter: 2, stepMs: 5 })
  const progress = await ChannelRecorder.open(t, redis.url)
  await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'QUIET-1' })
  t.same(await progress.received(2), [
    processing(0, 5, 'Recebendo requisicao no servidor Nexa-IA'),
    processing(1, 5, 'Analisando dados no servidor Nexa-IA'),
  ], 'scenario keys are case-insensitive')
  t.equal(await progress.arrivingWithin(100), 0)
})

test('publishBeforeAnswer: the first steps are published before the 202', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 2, stepMs: 30 })
  await sim.setScenario('EARLY-1', { publishBeforeAnswer: 2 })
  const progress = await ChannelRecorder.open(t, redis.url)
  const startedAt = Date.now()
  const answer = await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'EARLY-1' })
  t.equal(answer.status, 202)
  t.ok(Date.now() - startedAt >= 25, 'the answer waited for the second step')
  t.ok(progress.raw.length >= 1, 'progress arrived before the job id')
  const { job_id: jobId } = answer.json() as { job_id: string }
  const messages = (await progress.received(4)) as Array<{ status: string; job_id: string | null }>
  t.same(messages.map((m) => m.status), ['processing', 'processing', 'processing', 'done'])
  t.equal(messages[3]!.job_id, jobId)
})

test('publishBeforeAnswer larger than the job: the job is over before the 202', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 1, stepMs: 20 })
  await sim.setScenario('EARLY-2', { publishBeforeAnswer: 100 })
  const progress = await ChannelRecorder.open(t, redis.url)
  const answer = await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'EARLY-2' })
  t.equal(answer.status, 202)
  t.ok(progress.raw.length >= 2, 'earlier steps already arrived')
  const messages = await progress.received(3)
  t.match(messages[2], { status: 'done', job_id: (answer.json() as { job_id: string }).job_id })
  t.equal(await progress.arrivingWithin(60), 0)
})

test('start behaviours other than accept answer without starting a job', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 1, stepMs: 5 })
  const progress = await ChannelRecorder.open(t, redis.url)
  const cases = [
    { start: 'reject', status: 400 },
    { start: 'error', status: 500 },
    { start: 'unavailable', status: 503 },
    { start: 'no_job_id', status: 200 },
  ]
  for (const { start, status } of cases) {
    await sim.setScenario(`PN-${start}`, { start })
    const answer = await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: `PN-${start}` })
    t.equal(answer.status, status, start)
    const body = answer.json() as Record<string, unknown>
    t.type(body.error, 'string', `${start} explains itself`)
    t.notOk('job_id' in body, `${start} gives no job id`)
  }

  await sim.setScenario('PN-garbage', { start: 'garbage' })
  const garbage = await sim.call('POST', BATCH, { progress_channel: progress.channel, partnumbers: batchItems('PN-garbage') })
  t.equal(garbage.status, 200)
  t.match(garbage.contentType, /^application\/json/, 'garbage claims to be JSON')
  t.throws(() => garbage.json(), SyntaxError, 'garbage is not JSON')

  t.equal(await progress.arrivingWithin(60), 0, 'nothing was published')
})

test('hang: no answer until the client gives up; close() does not wait for hanging sockets', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 1, stepMs: 5 })
  await sim.setScenario('HANG-1', { start: 'hang' })
  const body = { progress_channel: 'progress-hang', partnumber: 'HANG-1' }

  await t.rejects(httpCall('POST', `${sim.url}${SINGLE}`, body, { giveUpAfterMs: 150 }), { name: 'TimeoutError' })

  const waiting = httpCall('POST', `${sim.url}${SINGLE}`, body)
  waiting.catch(() => {}) // asserted below, after close
  const received = async () => ((await sim.call('GET', '/_sim/requests')).json() as { requests: unknown[] }).requests.length
  while ((await received()) < 2) await sleep(5)
  const closing = Date.now()
  await sim.app.close()
  t.ok(Date.now() - closing < 1000, 'close did not wait for the hanging request')
  await t.rejects(waiting, 'the waiting client sees the connection close')
})

test('failTimes: answer with the start behaviour n times, then accept', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 0, stepMs: 5 })
  await sim.setScenario('FLAKY-1', { start: 'unavailable', failTimes: 2 })
  const progress = await ChannelRecorder.open(t, redis.url)
  const body = { progress_channel: progress.channel, partnumber: 'FLAKY-1' }
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await sim.call('POST', SINGLE, body)).status)
  t.same(statuses, [503, 503, 202])
  const messages = (await progress.received(2)) as Array<{ status: string }>
  t.same(messages.map((m) => m.status), ['processing', 'done'])

  await sim.setScenario('SLOW-1', { start: 'hang', failTimes: 1 })
  const slow = { progress_channel: progress.channel, partnumber: 'SLOW-1' }
  await t.rejects(httpCall('POST', `${sim.url}${SINGLE}`, slow, { giveUpAfterMs: 100 }))
  t.equal((await sim.call('POST', SINGLE, slow)).status, 202, 'the retry is accepted')
})

test('inject: raw strings verbatim, objects as JSON with the job id, at the given step', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 2, stepMs: 10 })
  const oversize = `{"status":"processing","padding":"${'x'.repeat(2_000_000)}"}`
  await sim.setScenario('ODD-1', {
    inject: [
      { afterStep: 1, raw: '{not json' },
      { afterStep: 1, message: { status: 'mystery' } },
      { afterStep: 0, raw: oversize },
      { afterStep: 3, message: { status: 'done', job_id: null, result: 'NCM 8541.21.20' } },
      { afterStep: 5, raw: '"late"' },
    ],
  })
  const progress = await ChannelRecorder.open(t, redis.url)
  const answer = await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'ODD-1' })
  const { job_id: jobId } = answer.json() as { job_id: string }
  await progress.waitFor(9)
  const resultOf = (raw: string | undefined) => (JSON.parse(raw!) as { result: unknown }).result
  t.same(progress.raw, [
    JSON.stringify(processing(0, 2, 'Recebendo requisicao no servidor Nexa-IA')),
    oversize,
    JSON.stringify(processing(1, 2, 'Analisando dados no servidor Nexa-IA')),
    '{not json',
    JSON.stringify({ status: 'mystery', job_id: jobId }),
    JSON.stringify(processing(2, 2, 'Finalizando classificacao')),
    JSON.stringify({ status: 'done', job_id: jobId, result: resultOf(progress.raw[6]) }),
    JSON.stringify({ status: 'done', job_id: null, result: 'NCM 8541.21.20' }),
    '"late"',
  ])
  t.match(resultOf(progress.raw[6]), { partnumber: 'ODD-1', ncm: '85423999' })
})

test('result overrides replace fields of the catalogue result', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 0, stepMs: 5 })
  await sim.setScenario('BC847BLT1G', { result: { ncm: null, confidence_score: 0.1 } })
  const progress = await ChannelRecorder.open(t, redis.url)
  await sim.call('POST', SINGLE, { progress_channel: progress.channel, partnumber: 'BC847BLT1G' })
  const [, done] = (await progress.received(2)) as [unknown, { result: unknown }]
  t.same(done.result, { ...BC847BLT1G, ncm: null, confidence_score: 0.1 })
})

test('invalid start payloads get 400 {error}', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 0, stepMs: 5 })
  const invalid: Array<[string, unknown]> = [
    [SINGLE, { partnumber: 'BC847BLT1G' }],
    [SINGLE, { progress_channel: 'progress-x' }],
    [SINGLE, { progress_channel: 'progress-x', partnumber: '' }],
    [SINGLE, { progress_channel: 'progress-x', partnumber: 42 }],
    [BATCH, { progress_channel: 'progress-x', partnumbers: {} }],
    [BATCH, { progress_channel: 'progress-x', partnumbers: ['BC847BLT1G'] }],
  ]
  for (const [endpoint, body] of invalid) {
    const answer = await sim.call('POST', endpoint, body)
    t.equal(answer.status, 400, JSON.stringify(body))
    t.type((answer.json() as { error: unknown }).error, 'string')
  }
  const notJson = await request(`${sim.url}${SINGLE}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"progress_channel": ' })
  t.equal(notJson.statusCode, 400)
  t.type(((await notJson.body.json()) as { error: unknown }).error, 'string')
})

test('batch: processing, one partial result or failure per item in order, then done without result', async (t) => {
  const sim = await startSimulator(t, redis.url, { stepMs: 10 })
  const progress = await ChannelRecorder.open(t, redis.url)
  const answer = await sim.call('POST', BATCH, { progress_channel: progress.channel, partnumbers: batchItems('BC847BLT1G', 'CL10C330JB8NNNC', 'LM358N') })
  t.equal(answer.status, 202)
  const { job_id: jobId } = answer.json() as { job_id: string }
  t.same(await progress.received(8), [
    processing(0, 3, 'Iniciando classificacao de 3 partnumbers'),
    processing(0, 3, 'Classificando partnumber BC847BLT1G'),
    { status: 'partial_result', job_id: jobId, current: 1, total: 3, message: 'Classificacao encontrada para o partnumber BC847BLT1G', single_classification: BC847BLT1G },
    processing(1, 3, 'Classificando partnumber CL10C330JB8NNNC'),
    { status: 'partial_result', job_id: jobId, current: 2, total: 3, message: 'Classificacao encontrada para o partnumber CL10C330JB8NNNC', single_classification: CL10C330JB8NNNC },
    processing(2, 3, 'Classificando partnumber LM358N'),
    { status: 'failed', job_id: jobId, error: 'Erro ao processar partnumberLM358N' },
    { status: 'done', job_id: jobId },
  ])
  t.equal(await progress.arrivingWithin(60), 0)
})

test('batch: the scenario of the first item that has one applies; failItems and failWithoutName', async (t) => {
  const sim = await startSimulator(t, redis.url, { stepMs: 10 })
  await sim.setScenario('ITEM-B', { failItems: ['ITEM-A'], failWithoutName: ['ITEM-C'], stepMs: 5 })
  const progress = await ChannelRecorder.open(t, redis.url)
  const answer = await sim.call('POST', BATCH, { progress_channel: progress.channel, partnumbers: batchItems('ITEM-A', 'ITEM-B', 'ITEM-C') })
  const { job_id: jobId } = answer.json() as { job_id: string }
  const messages = (await progress.received(8)) as Array<Record<string, unknown>>
  const answers = messages.filter((m) => m.status !== 'processing')
  t.same(answers.map((m) => [m.status, m.error ?? (m.single_classification as { partnumber?: string } | undefined)?.partnumber]), [
    ['failed', 'Erro ao processar partnumberITEM-A'],
    ['partial_result', 'ITEM-B'],
    ['failed', undefined],
    ['done', undefined],
  ])
  t.same(answers[2], { status: 'failed', job_id: jobId, error: null })
})

test('batch: stopAfterItems goes silent without done; doneEarly sends done with items unanswered', async (t) => {
  const sim = await startSimulator(t, redis.url, { stepMs: 5 })
  const items = batchItems('RC0603FR-0710KL', 'ERJ-3EKF1002V', '1N4148')

  await sim.setScenario('*batch*', { stopAfterItems: 1 })
  const stopped = await ChannelRecorder.open(t, redis.url)
  await sim.call('POST', BATCH, { progress_channel: stopped.channel, partnumbers: items })
  const first = (await stopped.received(3)) as Array<{ status: string }>
  t.same(first.map((m) => m.status), ['processing', 'processing', 'partial_result'])
  t.equal(await stopped.arrivingWithin(80), 0, 'no done')

  await sim.setScenario('*batch*', { doneEarly: true })
  const early = await ChannelRecorder.open(t, redis.url)
  await sim.call('POST', BATCH, { progress_channel: early.channel, partnumbers: items })
  const second = (await early.received(6)) as Array<{ status: string; single_classification?: { ncm: string } }>
  t.same(second.map((m) => m.status), ['processing', 'processing', 'partial_result', 'processing', 'partial_result', 'done'])
  t.same(second.filter((m) => m.single_classification).map((m) => m.single_classification!.ncm), ['85332120', '85332120'])
  t.equal(await early.arrivingWithin(50), 0, 'the last item is never answered')
})

test('/_sim/requests lists what the AI server received, invalid requests included; DELETE clears', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 0, stepMs: 5 })
  t.same((await sim.call('GET', '/_sim/requests')).json(), { requests: [] }, 'nothing yet: the AI server was not called')
  const single = { progress_channel: 'progress-a', partnumber: 'BC847BLT1G', supplier: 'Mouser' }
  const batch = { progress_channel: 'progress-b', partnumbers: batchItems('LM358N') }
  await sim.call('POST', SINGLE, single)
  await sim.call('POST', BATCH, batch)
  await sim.call('POST', SINGLE, { partnumber: 'NO-CHANNEL' })
  const { requests } = (await sim.call('GET', '/_sim/requests')).json() as { requests: Array<{ endpoint: string; body: unknown; receivedAt: string }> }
  t.same(requests.map(({ endpoint, body }) => ({ endpoint, body })), [
    { endpoint: SINGLE, body: single },
    { endpoint: BATCH, body: batch },
    { endpoint: SINGLE, body: { partnumber: 'NO-CHANNEL' } },
  ])
  t.ok(requests.every((r) => !Number.isNaN(Date.parse(r.receivedAt))))
  t.equal((await sim.call('DELETE', '/_sim/requests')).status, 204)
  t.same((await sim.call('GET', '/_sim/requests')).json(), { requests: [] })
})

test('scenarios are validated strictly and DELETE /_sim/scenarios clears them', async (t) => {
  const sim = await startSimulator(t, redis.url, { steps: 0, stepMs: 5 })
  const typo = await sim.call('PUT', '/_sim/scenarios/X', { outcom: 'fail' })
  t.equal(typo.status, 400)
  t.match((typo.json() as { error: string }).error, /outcom/, 'the unknown field is named')
  t.equal((await sim.call('PUT', '/_sim/scenarios/X', { start: 'explode' })).status, 400)
  t.equal((await sim.call('PUT', '/_sim/scenarios/X', { steps: '3' })).status, 400, 'no type coercion')
  t.equal((await sim.call('PUT', '/_sim/scenarios/X', { inject: [{ afterStep: 0 }] })).status, 400)

  await sim.setScenario('X', { start: 'reject' })
  const body = { progress_channel: 'progress-x', partnumber: 'X' }
  t.equal((await sim.call('POST', SINGLE, body)).status, 400)
  t.equal((await sim.call('DELETE', '/_sim/scenarios')).status, 204)
  t.equal((await sim.call('POST', SINGLE, body)).status, 202)
})

test('in-process bus: the same job through createMemoryBus', async (t) => {
  const bus = createMemoryBus()
  const app = await buildSimulator({ bus, steps: 2, stepMs: 5 })
  t.teardown(() => app.close())
  const received: Array<{ channel: string; message: unknown }> = []
  await bus.listen('progress-*', (channel, message) => received.push({ channel, message: JSON.parse(message) }))

  const answer = await app.inject({ method: 'POST', url: SINGLE, payload: { progress_channel: 'progress-mem', partnumber: 'BC847BLT1G' } })
  t.equal(answer.statusCode, 202)
  const { job_id: jobId } = answer.json() as { job_id: string }
  while (received.length < 4) await sleep(5)
  t.same(received, [...STAGES_OF_2, { status: 'done', job_id: jobId, result: BC847BLT1G }].map((message) => ({ channel: 'progress-mem', message })))
})

test('close() cancels pending steps: nothing is published afterwards', async (t) => {
  const bus = createMemoryBus()
  const app = await buildSimulator({ bus, steps: 3, stepMs: 60_000 })
  const received: string[] = []
  await bus.listen('progress-*', (_channel, message) => received.push(message))
  await app.inject({ method: 'POST', url: SINGLE, payload: { progress_channel: 'progress-slow', partnumber: 'BC847BLT1G' } })
  const closing = Date.now()
  await app.close()
  t.ok(Date.now() - closing < 1000, 'close is prompt')
  await sleep(20)
  t.equal(received.length, 1, 'only step 0 went out')
})

import t0, { type Test } from 'tap'
import { createRedisBus } from '../../src/services/bus/redis-bus.js'
import { buildSimulator } from '../../src/simulator/app.js'
import { failSilentJobs } from '../../src/services/jobs/job-outcomes.js'
import { startServices, startStack, eventually, silentLog, type Stack } from '../helpers/stack.js'

// POST /jobs/:id/retry on a batch (issue 12 item 8): once the batch has ended, only its failed
// items go to the AI server again, as the batch's next attempt; the items with a result keep it.
// Under both simulator profiles: the contract, and the real server's code as intended.

const { test } = t0
const services = await startServices()
t0.teardown(() => services.stop())

const PROFILES = ['contract', 'real-server'] as const
type Profile = (typeof PROFILES)[number]

// Real-server profile: an agent run lasts AGENT_MS (long enough for a second retry to find the
// first one running), one of its seconds SECOND_MS (its demo single job: 29 of them).
const AGENT_MS = 1_500
const SECOND_MS = 20
// Polling the API: slow enough to stay far below its rate limit (per address, shared by this file's gateways).
const POLL_MS = 200

/** A gateway on its own database, with the AI server of the profile. */
async function stackFor(t: Test, profile: Profile): Promise<Stack> {
  if (profile === 'contract') {
    const stack = await startStack(services, { simulator: { stepMs: 15 } })
    t.teardown(() => stack.close())
    return stack
  }
  const bus = await createRedisBus(services.redis.url, silentLog)
  const simulator = await buildSimulator({ bus, profile: 'real-server', realServer: { variant: 'as-intended', agentMs: AGENT_MS, secondMs: SECOND_MS } })
  const simulatorUrl = await simulator.listen({ host: '127.0.0.1', port: 0 })
  const stack = await startStack(services, { simulatorUrl })
  t.teardown(async () => { await stack.close(); await simulator.close(); await bus.close() })
  return stack
}

function client(stack: Stack, token: string) {
  const job = async (id: string) => (await stack.api('GET', `/jobs/${id}`, { token })).body
  return {
    job,
    batch: (partnumbers: string[]) => stack.api('POST', '/classifications/batch', { token, body: { partnumbers: partnumbers.map((partnumber) => ({ partnumber })) } }),
    retry: (id: string) => stack.api('POST', `/jobs/${id}/retry`, { token }),
    /** The job once it has ended (in `attempt`, when given). Bounds on a failure, not paces. */
    finished: (id: string, attempt = 1) => eventually(async () => {
      const body = await job(id)
      return ['DONE', 'FAILED'].includes(body.status) && body.attempt === attempt ? body : undefined
    }, 90_000, POLL_MS),
    /** The part numbers of each batch call the AI server got that named one of `partnumbers`, in order. */
    aiCalls: async (partnumbers: string[]) => (await stack.simulatorRequests())
      .filter((r) => r.endpoint?.includes('batch') && partnumbers.some((pn) => r.body?.partnumbers?.[pn]))
      .map((r) => Object.keys(r.body.partnumbers)),
  }
}

const statuses = (job: any) => job.items.map((i: any) => [i.partnumber, i.status])
const resultIds = (job: any) => Object.fromEntries(job.items.filter((i: any) => i.status === 'DONE').map((i: any) => [i.partnumber, i.result.id]))

for (const profile of PROFILES) {
  test(`${profile} profile: a finished batch's failed items are retried, and only those`, async (t) => {
    const stack = await stackFor(t, profile)
    const token = await stack.login()
    const api = client(stack, token)

    // The item that fails, and what else the batch holds. Contract: a scenario (keyed on the
    // batch's first part number) fails RB-C-FAIL among items the AI server answers; sent alone,
    // no scenario applies and it is answered. Real server: no scenario can make one item of a
    // batch fail and another succeed, so the other item is answered from history (a demo single
    // job's result), and RB-R-AGENTERR's agent raises, on every attempt.
    let failing: string
    let partnumbers: string[]
    let sentFirst: string[]
    if (profile === 'contract') {
      failing = 'RB-C-FAIL'
      partnumbers = ['RB-C-OK1', failing, 'RB-C-OK2']
      sentFirst = partnumbers
      await stack.scenario('RB-C-OK1', { failItems: [failing] })
    } else {
      failing = 'RB-R-AGENTERR'
      const single = await stack.api('POST', '/classifications', { token, body: { partnumber: 'BC847BLT1G' } })
      t.equal(single.status, 202, 'a demo single job starts')
      const known = await eventually(async () => {
        const body = await api.job(single.body.id)
        return ['DONE', 'FAILED'].includes(body.status) ? body : undefined
      }, 60_000, POLL_MS)
      t.equal(known.status, 'DONE', 'the demo part number is classified (the batch answers it from history)')
      partnumbers = ['BC847BLT1G', failing]
      sentFirst = [failing]
    }

    const started = await api.batch(partnumbers)
    t.equal(started.status, 202)
    const first = await api.finished(started.body.id)
    t.equal(first.status, 'DONE', 'the batch ends DONE')
    t.same(statuses(first), partnumbers.map((pn) => [pn, pn === failing ? 'FAILED' : 'DONE']), 'with one failed item')
    t.same(await api.aiCalls(partnumbers), [sentFirst], 'first attempt: one AI call')
    const results = resultIds(first)
    await eventually(() => stack.taskResults.find((m) => m.job_id === first.id), 30_000)

    // Slow the retried item down, so that the attempt is still running when retried again.
    if (profile === 'contract') await stack.scenario(failing, { stepMs: 1_000 })
    const retried = await api.retry(first.id)
    t.equal(retried.status, 202, 'a DONE batch with a failed item can be retried')
    t.equal(retried.body.attempt, 2, 'as its next attempt')
    t.match(retried.body.status, /^(QUEUED|RUNNING)$/)
    t.equal(retried.body.timed_out, false)
    t.equal(retried.body.finished_at, null)
    t.same(statuses(retried.body), partnumbers.map((pn) => [pn, pn === failing ? 'PENDING' : 'DONE']), 'only the failed item waits again')
    t.same(resultIds(retried.body), results, 'the other items keep their results')
    t.match(retried.body.progress, { current: partnumbers.length - 1, total: partnumbers.length }, 'progress counts the items already answered')
    t.same(retried.body.counts, { total: partnumbers.length, done: partnumbers.length - 1, failed: 0, pending: 1 })

    const again = await api.retry(first.id)
    t.equal(again.status, 409, 'a second retry while the first runs is refused')
    t.equal(again.body.code, 'job_not_failed')

    const second = await api.finished(first.id, 2)
    t.equal(second.status, 'DONE', 'the retried batch ends DONE')
    const calls = await api.aiCalls(partnumbers)
    t.same(calls, [sentFirst, [failing]], 'second attempt: one AI call, with only the failed part number')
    const { rows: chunks } = await stack.db.query('SELECT attempt, partnumbers, channel FROM job_chunks WHERE job_id = $1 ORDER BY attempt, chunk', [first.id])
    t.same(chunks.map((c) => [c.attempt, c.partnumbers]), [[1, sentFirst], [2, [failing]]], 'a new chunk for the new attempt')
    t.not(chunks[1].channel, chunks[0].channel, 'on a fresh channel')
    const failedItem = second.items.find((i: any) => i.partnumber === failing)
    if (profile === 'contract') {
      t.equal(failedItem.status, 'DONE', 'sent alone, the item is answered this time')
      t.equal(failedItem.source, 'AI')
      t.same(second.counts, { total: 3, done: 3, failed: 0, pending: 0 })
    } else {
      t.equal(failedItem.status, 'FAILED', 'its agent raises again: failed again')
      t.match(failedItem.error, /RB-R-AGENTERR/)
      t.same(second.counts, { total: 2, done: 1, failed: 1, pending: 0 })
      const { rows } = await stack.db.query(`SELECT attempt FROM job_events WHERE job_id = $1 AND type = 'item' ORDER BY id`, [first.id])
      t.same(rows.map((r) => r.attempt), [1, 2], 'its failure recorded once in each attempt')
    }
    for (const [pn, id] of Object.entries(results)) {
      t.equal(second.items.find((i: any) => i.partnumber === pn).result.id, id, `${pn} keeps its classification`)
    }
    t.match(second.progress, { current: partnumbers.length, total: partnumbers.length })
    const messages = await eventually(() => {
      const sent = stack.taskResults.filter((m) => m.job_id === first.id)
      return sent.length === 2 ? sent : undefined
    }, 30_000)
    t.equal(messages[1]!.status, 'done', 'a new task_results message for the new attempt')

    if (profile === 'real-server') {
      const third = await api.retry(first.id)
      t.equal(third.status, 202, 'still a failed item: it can be retried again')
      t.equal(third.body.attempt, 3)
      await api.finished(first.id, 3)
      t.same(await api.aiCalls(partnumbers), [sentFirst, [failing], [failing]])
    }
  })

  test(`${profile} profile: a DONE batch where every item has a result has nothing to retry`, async (t) => {
    const stack = await stackFor(t, profile)
    const token = await stack.login()
    const api = client(stack, token)
    // Contract: answered by the AI server. Real server: its batches answer no item yet (it names
    // no part number); the demo single job's result answers a batch from history.
    let partnumbers: string[]
    if (profile === 'contract') partnumbers = ['RB-ALL-1', 'RB-ALL-2']
    else {
      const single = await stack.api('POST', '/classifications', { token, body: { partnumber: 'CL10C330JB8NNNC' } })
      await eventually(async () => (await api.job(single.body.id)).status === 'DONE', 60_000, POLL_MS)
      partnumbers = ['CL10C330JB8NNNC']
    }
    const started = await api.batch(partnumbers)
    const job = await api.finished(started.body.id)
    t.equal(job.status, 'DONE')
    t.ok(job.items.every((i: any) => i.status === 'DONE'), 'every item has a result')
    const before = (await stack.simulatorRequests()).length
    const res = await api.retry(job.id)
    t.equal(res.status, 409)
    t.equal(res.body.code, 'nothing_to_retry')
    t.match(res.body.message, /every item of this batch has a result/i)
    const after = await api.job(job.id)
    t.match(after, { status: 'DONE', attempt: 1, finished_at: job.finished_at }, 'the batch is left as it was')
    t.same(resultIds(after), resultIds(job))
    t.equal((await stack.simulatorRequests()).length, before, 'nothing sent to the AI server')
  })
}

test('contract profile: a batch failed by its deadline (timed_out) is retried: its failed items, timed_out cleared', async (t) => {
  const stack = await stackFor(t, 'contract')
  const token = await stack.login()
  const api = client(stack, token)
  // RB-T-1 is answered, then the AI server says nothing more on that attempt.
  await stack.scenario('RB-T-1', { stopAfterItems: 1 })
  const started = await api.batch(['RB-T-1', 'RB-T-2'])
  await eventually(async () => (await api.job(started.body.id)).counts.done === 1, 60_000, POLL_MS)
  // What the sweeper does once the deadline has passed (the only live job of this database).
  const ended = await failSilentJobs(stack.db, 0, 'Timed out: no word from the AI server')
  t.same(ended.map((j) => j.id), [started.body.id])
  const failed = await api.job(started.body.id)
  t.match(failed, { status: 'FAILED', timed_out: true })
  t.same(statuses(failed), [['RB-T-1', 'DONE'], ['RB-T-2', 'FAILED']])

  const retried = await api.retry(failed.id)
  t.equal(retried.status, 202)
  t.match(retried.body, { attempt: 2, timed_out: false, error: null })
  const job = await api.finished(failed.id, 2)
  t.equal(job.status, 'DONE')
  t.same(statuses(job), [['RB-T-1', 'DONE'], ['RB-T-2', 'DONE']])
  t.same(resultIds(job)['RB-T-1'], resultIds(failed)['RB-T-1'], 'the answered item keeps its classification')
  t.same(await api.aiCalls(['RB-T-1', 'RB-T-2']), [['RB-T-1', 'RB-T-2'], ['RB-T-2']], 'only the failed item is sent again')
})

test('a single job that is DONE still cannot be retried', async (t) => {
  const stack = await stackFor(t, 'contract')
  const token = await stack.login()
  const api = client(stack, token)
  const single = await stack.api('POST', '/classifications', { token, body: { partnumber: 'RB-SINGLE-1' } })
  await eventually(async () => (await api.job(single.body.id)).status === 'DONE', 60_000, POLL_MS)
  const res = await api.retry(single.body.id)
  t.equal(res.status, 409)
  t.equal(res.body.code, 'job_not_failed')
})

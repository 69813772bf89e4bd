import t0 from 'tap'
import type { FastifyBaseLogger } from 'fastify'
import { startDatabasePool } from '../helpers/stack.js'
import { createJobListener } from '../../src/services/jobs/job-listener.js'
import { parseAiMessage } from '../../src/services/ai/messages.js'
import { createMetrics } from '../../src/services/metrics/metrics.js'

// Channels an event stream has just read live (jobs another instance started, or started before a
// restart) are learnt by the listener: their first messages are written without looking the
// channel up first. What the listener knows already is not overridden by such a read.

const { test } = t0
const { pool, close } = await startDatabasePool(4)
t0.teardown(close)
const silent = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child: () => silent, level: 'silent' } as unknown as FastifyBaseLogger
const { rows: [owner] } = await pool.query(`INSERT INTO users (email, password_hash) VALUES ('learn@nexa.test', 'x') RETURNING id`)

async function liveJobs(prefix: string, count: number) {
  const { rows } = await pool.query(
    `INSERT INTO jobs (kind, owner_id, status, source, partnumber, input, channel)
     SELECT 'SINGLE', $1, 'RUNNING', 'AI', upper($2) || n, '{}', $2 || n FROM generate_series(1, $3) AS n RETURNING id, attempt, channel, partnumber`,
    [owner.id, prefix, count],
  )
  return rows as Array<{ id: string; attempt: number; channel: string; partnumber: string }>
}
const processing = (current: number) => parseAiMessage(JSON.stringify({ status: 'processing', progress: { current, total: 5, message: `step ${current}` } }))
const storedProgress = async (ids: string[]) =>
  (await pool.query(`SELECT count(*)::int AS n FROM job_events WHERE job_id = ANY($1) AND type = 'progress'`, [ids])).rows[0].n

/** Connections the pool handed out while `work` ran: one per statement here. */
async function statementsDuring(work: () => Promise<void>): Promise<number> {
  let checkouts = 0
  const onAcquire = () => checkouts++
  pool.on('acquire', onAcquire)
  try {
    await work()
  } finally {
    pool.off('acquire', onAcquire)
  }
  return checkouts
}

test('learnt channels are written without a lookup; unknown ones are looked up first', async (t) => {
  const listener = createJobListener({ pool, log: silent, onJobFinished: () => {} })
  t.teardown(() => listener.close())
  const learnt = await liveJobs('progress-learnt-', 20)
  const strangers = await liveJobs('progress-stranger-', 20)

  for (const job of learnt) listener.learn(job.channel, { id: job.id, attempt: job.attempt, kind: 'SINGLE', partnumber: job.partnumber })
  const withLearnt = await statementsDuring(async () => {
    for (const job of learnt) listener.handle(job.channel, processing(1))
    await listener.drain()
  })
  const withStrangers = await statementsDuring(async () => {
    for (const job of strangers) listener.handle(job.channel, processing(1))
    await listener.drain()
  })
  t.equal(await storedProgress(learnt.map((j) => j.id)), 20, 'every learnt channel\'s message stored')
  t.equal(await storedProgress(strangers.map((j) => j.id)), 20, 'and every other one')
  t.equal(withLearnt, 1, 'learnt: the progress statement alone')
  t.equal(withStrangers, 2, 'not learnt: one lookup of the twenty channels, then the progress statement')
})

test('what the listener knows stays: a channel it saw end is not made live again by a stream\'s read', async (t) => {
  const metrics = createMetrics()
  const finished: string[] = []
  const listener = createJobListener({ pool, log: silent, metrics, onJobFinished: (end) => finished.push(end.jobId) })
  t.teardown(() => listener.close())
  const [job] = await liveJobs('progress-ended-', 1)
  listener.track(job!.channel, { id: job!.id, attempt: job!.attempt, kind: 'SINGLE', partnumber: job!.partnumber })
  listener.handle(job!.channel, parseAiMessage(JSON.stringify({ status: 'failed', error: 'gave up' })))
  await listener.drain()
  t.same(finished, [job!.id], 'the job ended here')

  listener.learn(job!.channel, { id: job!.id, attempt: job!.attempt, kind: 'SINGLE', partnumber: job!.partnumber }) // a stream's read from before the end
  listener.handle(job!.channel, processing(2))
  await listener.drain()
  const outcomes = Object.fromEntries((await metrics.aiMessages.get()).values.map((v) => [v.labels.outcome, v.value]))
  t.same(outcomes, { applied: 1, late: 1 }, 'the message after the end is late, not applied')
  t.equal(await storedProgress([job!.id]), 0, 'nothing stored after the end')
})

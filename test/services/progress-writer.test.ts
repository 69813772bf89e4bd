import t0 from 'tap'
import { createHash } from 'node:crypto'
import { startDatabasePool } from '../helpers/stack.js'
import { recordProgress, type JobAttempt, type ProgressPayload } from '../../src/services/jobs/job-outcomes.js'
import { ProgressWriter } from '../../src/services/jobs/progress-writer.js'
import type { Progress } from '../../src/services/ai/messages.js'

// The batched progress writer must answer and write exactly as recordProgress does, message by message.

const { test } = t0
const { pool, close } = await startDatabasePool(6)
t0.teardown(close)
const { rows: [owner] } = await pool.query(`INSERT INTO users (email, password_hash) VALUES ('writer@nexa.test', 'x') RETURNING id`)

let jobNumber = 0
async function newJob(status = 'RUNNING'): Promise<JobAttempt> {
  const { rows } = await pool.query(
    `INSERT INTO jobs (kind, owner_id, status, source, partnumber, input, channel, finished_at, error)
     VALUES ('SINGLE', $1, $2, 'AI', $3, '{}', gen_random_uuid()::text, CASE WHEN $2 IN ('DONE', 'FAILED') THEN now() END, CASE WHEN $2 = 'FAILED' THEN 'x' END)
     RETURNING id, attempt`,
    [owner.id, status, `PN${++jobNumber}`],
  )
  return rows[0]
}

const message = (current: number, text = `step ${current}`) => {
  const progress: Progress = { current, total: 5, message: text }
  const raw = JSON.stringify({ status: 'processing', progress })
  return { progress, hash: createHash('sha256').update(raw).digest(), payload: { status: 'processing', progress } }
}

/** One message through the writer, as a promise of its `written` callback. */
function record(writer: ProgressWriter, job: JobAttempt, m: { hash: Buffer; payload: ProgressPayload }): Promise<void> {
  return new Promise((resolve, reject) => writer.record(job, m.hash, m.payload, (err) => (err === undefined ? resolve() : reject(err))))
}

async function state(job: JobAttempt) {
  const { rows: [j] } = await pool.query('SELECT status, progress_current, progress_total, progress_message FROM jobs WHERE id = $1', [job.id])
  const { rows: [e] } = await pool.query(`SELECT count(*)::int AS n FROM job_events WHERE job_id = $1 AND type = 'progress'`, [job.id])
  return { ...j, events: e.n }
}

test('many jobs in one statement: each message stored once and its job moved', async (t) => {
  const writer = new ProgressWriter({ pool })
  const jobs = await Promise.all(Array.from({ length: 50 }, () => newJob('QUEUED')))
  await Promise.all(jobs.map((job, i) => record(writer, job, message(i % 5))))
  for (const [i, job] of jobs.entries()) t.same(await state(job), { status: 'RUNNING', progress_current: i % 5, progress_total: 5, progress_message: `step ${i % 5}`, events: 1 })
  // The same messages again: stored already, nothing changes.
  await Promise.all(jobs.map((job, i) => record(writer, job, message(i % 5))))
  for (const [i, job] of jobs.entries()) t.same(await state(job), { status: 'RUNNING', progress_current: i % 5, progress_total: 5, progress_message: `step ${i % 5}`, events: 1 })
})

test('writes as recordProgress does: repeats, ended jobs, other attempts, backward progress', async (t) => {
  const writer = new ProgressWriter({ pool })
  for (const write of ['one by one', 'batched'] as const) {
    const store = (job: JobAttempt, m: ReturnType<typeof message>) =>
      write === 'batched' ? record(writer, job, m) : recordProgress(pool, job, m.hash, m.payload)
    const live = await newJob()
    const done = await newJob('DONE')
    await store(live, message(3))
    t.same(await state(live), { status: 'RUNNING', progress_current: 3, progress_total: 5, progress_message: 'step 3', events: 1 }, `${write}: forward`)
    await store(live, message(2, 'late'))
    t.same(await state(live), { status: 'RUNNING', progress_current: 3, progress_total: 5, progress_message: 'step 3', events: 2 }, `${write}: backward is stored, the job keeps 3`)
    await store(live, message(3))
    t.equal((await state(live)).events, 2, `${write}: a repeat is not stored again`)
    await store({ id: live.id, attempt: 2 }, message(4))
    t.same(await state(live), { status: 'RUNNING', progress_current: 3, progress_total: 5, progress_message: 'step 3', events: 2 }, `${write}: another attempt changes nothing`)
    await store(done, message(1))
    t.same(await state(done), { status: 'DONE', progress_current: null, progress_total: null, progress_message: null, events: 0 }, `${write}: an ended job changes nothing`)
  }
})

test('one job several times in one batch: the furthest wins (the later among equals); the same message twice is stored once', async (t) => {
  const writer = new ProgressWriter({ pool })
  const job = await newJob()
  const [a, b, c] = [message(3, 'three'), message(2, 'two'), message(3, 'three again')]
  await Promise.all([record(writer, job, a), record(writer, job, b), record(writer, job, c)])
  t.same(await state(job), { status: 'RUNNING', progress_current: 3, progress_total: 5, progress_message: 'three again', events: 3 })
  const other = await newJob()
  const d = message(1)
  await Promise.all([record(writer, other, d), record(writer, other, d)])
  t.same(await state(other), { status: 'RUNNING', progress_current: 1, progress_total: 5, progress_message: 'step 1', events: 1 })
})

test('a message PostgreSQL refuses fails alone; the rest of its batch is written', async (t) => {
  const writer = new ProgressWriter({ pool })
  const jobs = await Promise.all([newJob(), newJob(), newJob()])
  const bad = message(1, 'nul \u0000 inside')
  const results = await Promise.allSettled(jobs.map((job, i) => (i === 1 ? record(writer, job, bad) : record(writer, job, message(1)))))
  t.same(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled'])
  t.equal((await state(jobs[0]!)).events, 1)
  t.equal((await state(jobs[1]!)).events, 0)
  t.equal((await state(jobs[2]!)).events, 1)
})

test('any text survives the batch exactly: accents, symbols outside Latin-1, emoji, quotes, backslashes', async (t) => {
  const writer = new ProgressWriter({ pool })
  const texts = ['Consultando a classificação…', 'Ω ≤ 5 % → “ok”', 'IC 🔌 step', 'quote " and backslash \\ and tab \t']
  const jobs = await Promise.all(texts.map(() => newJob()))
  await Promise.all(jobs.map((job, i) => record(writer, job, message(2, texts[i]))))
  for (const [i, job] of jobs.entries()) {
    t.equal((await state(job)).progress_message, texts[i], 'the job\'s progress')
    const { rows } = await pool.query(`SELECT payload->'progress'->>'message' AS text FROM job_events WHERE job_id = $1`, [job.id])
    t.same(rows, [{ text: texts[i] }], 'its stored event')
  }
})

test('never more than maxConcurrent statements; everything handed over gets written', async (t) => {
  const writer = new ProgressWriter({ pool, maxBatch: 7, maxConcurrent: 2 })
  const jobs = await Promise.all(Array.from({ length: 40 }, () => newJob()))
  let most = 0
  await Promise.all(jobs.map((job) => record(writer, job, message(1)).finally(() => { most = Math.max(most, writer.stats().running) })))
  t.ok(most <= 2)
  t.same(writer.stats(), { waiting: 0, running: 0 })
  for (const job of jobs) t.same(await state(job), { status: 'RUNNING', progress_current: 1, progress_total: 5, progress_message: 'step 1', events: 1 })
})

test('messages handed over within the gathering time share one statement', async (t) => {
  const writer = new ProgressWriter({ pool, gatherMs: 50 })
  const jobs = await Promise.all(Array.from({ length: 3 }, () => newJob()))
  const written = jobs.map((job, i) => new Promise<void>((resolve) => setTimeout(resolve, i * 10)).then(() => record(writer, job, message(2))))
  await new Promise((r) => setTimeout(r, 30))
  t.same(writer.stats(), { waiting: 3, running: 0 }, 'nothing written before the gathering time is over')
  await Promise.all(written)
  // now() is the statement's transaction time: one time for the three means one statement.
  const { rows: [events] } = await pool.query(`SELECT count(*)::int AS n, count(DISTINCT created_at)::int AS statements FROM job_events WHERE job_id = ANY($1)`, [jobs.map((j) => j.id)])
  t.same(events, { n: 3, statements: 1 })
})

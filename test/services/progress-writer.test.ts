import t0 from 'tap'
import pg from 'pg'
import { createHash } from 'node:crypto'
import { startServices, createDatabase } from '../helpers/stack.js'
import { migrate } from '../../src/db/migrate.js'
import { recordProgress, type JobAttempt } from '../../src/services/jobs/job-outcomes.js'
import { ProgressWriter } from '../../src/services/jobs/progress-writer.js'
import type { Progress } from '../../src/services/ai/messages.js'

// The batched progress writer must answer and write exactly as recordProgress does, message by message.

const { test } = t0
const services = await startServices()
const databaseUrl = await createDatabase(services.postgres.adminUrl)
await migrate(databaseUrl)
const pool = new pg.Pool({ connectionString: databaseUrl, max: 6 })
pool.on('error', () => {}) // idle connections cut when the server stops at the end
t0.teardown(async () => { await pool.end(); await services.stop() })
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

async function state(job: JobAttempt) {
  const { rows: [j] } = await pool.query('SELECT status, progress_current, progress_total, progress_message FROM jobs WHERE id = $1', [job.id])
  const { rows: [e] } = await pool.query(`SELECT count(*)::int AS n FROM job_events WHERE job_id = $1 AND type = 'progress'`, [job.id])
  return { ...j, events: e.n }
}

test('many jobs in one statement: each message stored once and its job moved', async (t) => {
  const writer = new ProgressWriter({ pool })
  const jobs = await Promise.all(Array.from({ length: 50 }, () => newJob('QUEUED')))
  const results = await Promise.all(jobs.map((job, i) => writer.record(job, message(i % 5).progress, message(i % 5).hash, message(i % 5).payload)))
  t.ok(results.every(Boolean))
  for (const [i, job] of jobs.entries()) t.same(await state(job), { status: 'RUNNING', progress_current: i % 5, progress_total: 5, progress_message: `step ${i % 5}`, events: 1 })
  // The same messages again: stored already, nothing moves.
  const again = await Promise.all(jobs.map((job, i) => writer.record(job, message(i % 5).progress, message(i % 5).hash, message(i % 5).payload)))
  t.ok(again.every((r) => r === false))
  t.equal((await state(jobs[0]!)).events, 1)
})

test('answers as recordProgress does: repeats, ended jobs, other attempts, backward progress', async (t) => {
  const writer = new ProgressWriter({ pool })
  for (const write of ['one by one', 'batched'] as const) {
    const record = (job: JobAttempt, m: ReturnType<typeof message>) =>
      write === 'batched' ? writer.record(job, m.progress, m.hash, m.payload) : recordProgress(pool, job, m.progress, m.hash, m.payload)
    const live = await newJob()
    const done = await newJob('DONE')
    t.equal(await record(live, message(3)), true, `${write}: forward`)
    t.equal(await record(live, message(2)), true, `${write}: backward is stored, the job keeps 3`)
    t.equal((await state(live)).progress_current, 3)
    t.equal(await record(live, message(3)), false, `${write}: a repeat`)
    t.equal(await record({ id: live.id, attempt: 2 }, message(4)), false, `${write}: another attempt`)
    t.equal(await record(done, message(1)), false, `${write}: an ended job`)
    t.same(await state(live), { status: 'RUNNING', progress_current: 3, progress_total: 5, progress_message: 'step 3', events: 2 })
    t.equal((await state(done)).events, 0)
  }
})

test('one job twice in one batch: the furthest wins; the same message twice counts once', async (t) => {
  const writer = new ProgressWriter({ pool })
  const job = await newJob()
  const [a, b, c] = [message(3, 'three'), message(2, 'two'), message(3, 'three again')]
  t.same(await Promise.all([writer.record(job, a.progress, a.hash, a.payload), writer.record(job, b.progress, b.hash, b.payload), writer.record(job, c.progress, c.hash, c.payload)]), [true, true, true])
  t.same(await state(job), { status: 'RUNNING', progress_current: 3, progress_total: 5, progress_message: 'three again', events: 3 })
  const other = await newJob()
  const d = message(1)
  t.same(await Promise.all([writer.record(other, d.progress, d.hash, d.payload), writer.record(other, d.progress, d.hash, d.payload)]), [true, false])
  t.equal((await state(other)).events, 1)
})

test('a message PostgreSQL refuses fails alone; the rest of its batch is written', async (t) => {
  const writer = new ProgressWriter({ pool })
  const jobs = await Promise.all([newJob(), newJob(), newJob()])
  const bad = message(1, 'nul \u0000 inside')
  const results = await Promise.allSettled(jobs.map((job, i) => (i === 1 ? writer.record(job, bad.progress, bad.hash, bad.payload) : writer.record(job, message(1).progress, message(1).hash, message(1).payload))))
  t.equal(results[0]!.status, 'fulfilled')
  t.equal(results[1]!.status, 'rejected')
  t.equal(results[2]!.status, 'fulfilled')
  t.equal((await state(jobs[0]!)).events, 1)
  t.equal((await state(jobs[1]!)).events, 0)
})

test('never more than maxConcurrent statements; everything handed over gets written', async (t) => {
  const writer = new ProgressWriter({ pool, maxBatch: 7, maxConcurrent: 2 })
  const jobs = await Promise.all(Array.from({ length: 40 }, () => newJob()))
  let most = 0
  const all = jobs.map((job) => writer.record(job, message(1).progress, message(1).hash, message(1).payload).finally(() => { most = Math.max(most, writer.stats().running) }))
  t.ok((await Promise.all(all)).every(Boolean))
  t.ok(most <= 2)
  t.same(writer.stats(), { waiting: 0, running: 0 })
})

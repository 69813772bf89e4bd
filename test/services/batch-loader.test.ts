import t0 from 'tap'
import { randomUUID } from 'node:crypto'
import { startDatabasePool } from '../helpers/stack.js'
import { BatchLoader } from '../../src/db/batch-loader.js'
import { getJobRecords, type JobRecord } from '../../src/services/jobs/jobs-store.js'

// Reads asked for together go to PostgreSQL as one query, and each caller gets its own row.

const { test } = t0
const { pool, close } = await startDatabasePool(4)
t0.teardown(close)
const { rows: [owner] } = await pool.query(`INSERT INTO users (email, password_hash) VALUES ('loader@nexa.test', 'x') RETURNING id`)
const { rows: jobs } = await pool.query(
  `INSERT INTO jobs (kind, owner_id, status, source, partnumber, input, channel)
   SELECT 'SINGLE', $1, 'RUNNING', 'AI', 'PN' || n, '{}', 'progress-' || gen_random_uuid() FROM generate_series(1, 40) AS n RETURNING id, partnumber`,
  [owner.id],
)

function countingLoader() {
  const batches: string[][] = []
  const loader = new BatchLoader(async (ids: string[]) => {
    batches.push(ids)
    return getJobRecords(pool, ids)
  }, { maxBatch: 25 })
  return { loader, batches }
}

test('loads asked for in the same turn share one query; each gets its own row, a missing one undefined', async (t) => {
  const { loader, batches } = countingLoader()
  const missing = randomUUID()
  const wanted = [...jobs.slice(0, 10).map((j) => j.id), jobs[0].id, missing]
  const found = await Promise.all(wanted.map((id) => loader.load(id)))
  t.same(batches.map((b) => b.length), [11], 'one query, the repeated key asked once')
  t.same(found.slice(0, 11).map((j) => (j as JobRecord).partnumber), [...jobs.slice(0, 10).map((j) => j.partnumber), jobs[0].partnumber])
  t.equal(found[11], undefined, 'an unknown id')
})

test('more keys than a batch holds: several queries, every caller answered', async (t) => {
  const { loader, batches } = countingLoader()
  const found = await Promise.all(jobs.map((j) => loader.load(j.id)))
  t.same(batches.map((b) => b.length), [25, 15])
  t.same(found.map((j) => j?.id), jobs.map((j) => j.id))
})

test('loads in later turns are queries of their own', async (t) => {
  const { loader, batches } = countingLoader()
  t.equal((await loader.load(jobs[1].id))?.id, jobs[1].id)
  t.equal((await loader.load(jobs[2].id))?.id, jobs[2].id)
  t.equal(batches.length, 2)
})

test('a failed query fails every caller of its batch, and the next batch works', async (t) => {
  let fail = true
  const loader = new BatchLoader(async (ids: string[]) => {
    if (fail) await pool.query('SELECT * FROM no_such_table')
    return getJobRecords(pool, ids)
  })
  const results = await Promise.allSettled([loader.load(jobs[3].id), loader.load(jobs[4].id)])
  t.same(results.map((r) => r.status), ['rejected', 'rejected'])
  t.match((results[0] as PromiseRejectedResult).reason.message, /no_such_table/)
  fail = false
  t.equal((await loader.load(jobs[3].id))?.id, jobs[3].id)
})

test('with gatherMs, keys asked for within that time share the first one\'s query', async (t) => {
  const batches: string[][] = []
  const loader = new BatchLoader(async (ids: string[]) => {
    batches.push(ids)
    return getJobRecords(pool, ids)
  }, { gatherMs: 40 })
  const first = loader.load(jobs[5].id)
  await new Promise((r) => setTimeout(r, 15))
  const second = loader.load(jobs[6].id)
  t.same((await Promise.all([first, second])).map((j) => j?.id), [jobs[5].id, jobs[6].id])
  t.same(batches, [[jobs[5].id, jobs[6].id]], 'one query for both')
})

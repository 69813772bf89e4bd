import t0 from 'tap'
import type { FastifyBaseLogger } from 'fastify'
import { startDatabasePool } from '../helpers/stack.js'
import { createJobListener } from '../../src/services/jobs/job-listener.js'
import { parseAiMessage } from '../../src/services/ai/messages.js'
import { createMetrics } from '../../src/services/metrics/metrics.js'

// The listener's memory is bounded: while its writes cannot go through (here: the pool's only
// connection is held, as when PostgreSQL hangs), it keeps at most maxQueuedMessages; beyond that,
// progress is not stored (streams got it already), while a job's final message is always kept.
// What it holds unwritten is what an event stream's snapshot adds to the stored job.

const { test } = t0
const { pool, close } = await startDatabasePool(1)
t0.teardown(close)

const logs: Array<{ level: string; msg: string }> = []
const log = Object.fromEntries(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].map((level) => [level, (_obj: unknown, msg: string) => logs.push({ level, msg })]))
const noisy = { ...log, child: () => noisy, level: 'info', silent: () => {} } as unknown as FastifyBaseLogger

const processing = (current: number) => parseAiMessage(JSON.stringify({ status: 'processing', progress: { current, total: 20, message: `step ${current}` } }))

test('beyond maxQueuedMessages progress is streamed but not stored; the final message is kept; all is stored again once writes go through', async (t) => {
  const { rows: [owner] } = await pool.query(`INSERT INTO users (email, password_hash) VALUES ('listener@nexa.test', 'x') RETURNING id`)
  const { rows: [job] } = await pool.query(
    `INSERT INTO jobs (kind, owner_id, status, source, partnumber, input, channel) VALUES ('SINGLE', $1, 'RUNNING', 'AI', 'PN-LIMIT', '{}', 'progress-limit') RETURNING id, attempt`,
    [owner.id],
  )
  const metrics = createMetrics()
  const ended: string[] = []
  const listener = createJobListener({ pool, log: noisy, metrics, maxQueuedMessages: 5, onJobFinished: (end) => ended.push(end.status) })
  t.teardown(() => listener.close())
  listener.track('progress-limit', { id: job.id, attempt: job.attempt, kind: 'SINGLE', partnumber: 'PN-LIMIT' })

  const held = await pool.connect() // every write now waits
  for (let step = 1; step <= 12; step++) listener.handle('progress-limit', processing(step))
  listener.handle('progress-limit', parseAiMessage(JSON.stringify({ status: 'failed', error: 'the AI server gave up' })))
  t.equal(listener.stats().queuedMessages, 6, 'five progress messages and the final one held, no more')
  t.equal(logs.filter((l) => l.level === 'warn' && /holds its maximum/.test(l.msg)).length, 1, 'said once')
  t.same(listener.unwrittenProgress('progress-limit'), { current: 5, total: 20, message: 'step 5' }, 'the furthest progress held and not written yet (for snapshots)')

  held.release()
  await listener.drain()
  t.equal(listener.unwrittenProgress('progress-limit'), undefined, 'nothing unwritten once drained')
  const { rows: [stored] } = await pool.query(`SELECT count(*) FILTER (WHERE type = 'progress')::int AS progress, count(*) FILTER (WHERE final)::int AS final FROM job_events WHERE job_id = $1`, [job.id])
  t.same(stored, { progress: 5, final: 1 }, 'the held messages were written, the rest of the progress was not')
  t.same((await pool.query('SELECT status, error FROM jobs WHERE id = $1', [job.id])).rows[0], { status: 'FAILED', error: 'the AI server gave up' })
  t.same(ended, ['FAILED'])
  const outcomes = Object.fromEntries((await metrics.aiMessages.get()).values.map((v) => [v.labels.outcome, v.value]))
  t.same(outcomes, { applied: 6, not_stored: 7 }, 'counted by outcome')
  t.ok(logs.some((l) => l.level === 'info' && /progress is stored again/.test(l.msg)), 'and said when it stores again')
})

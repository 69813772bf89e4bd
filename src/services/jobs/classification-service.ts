import { randomUUID } from 'node:crypto'
import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import { inTransaction } from '../../db/queryable.js'
import { HttpError, conflict, notFound, tooManyRequests } from '../../http-errors.js'
import type { AiClient } from '../ai/ai-client.js'
import { AiStartError } from '../ai/ai-client.js'
import type { MessageBus } from '../bus/message-bus.js'
import type { Identity } from '../auth/accounts.js'
import { findActiveClassification, normalizePartnumber } from '../classifications/classifications-store.js'
import { ncmReasons } from '../classifications/review-reasons.js'
import { checkNcms } from '../ncm/ncm-checks.js'
import type { NcmCheck } from '../ncm/ncm-check.js'
import { claimJobSlot, countItemsWithoutResult, getJobRecord, insertJob, isTerminal, recordAiJobId, requeueBatchFailedItems, requeueFailedJob, toJobView, type JobInput, type JobRecord, type JobView } from './jobs-store.js'
import { finishJob, type JobEnd } from './job-outcomes.js'
import type { Metrics } from '../metrics/metrics.js'
import { closeChunk } from './batch-outcomes.js'
import { insertChunks, insertItems, itemInputs, recordChunkAiJobId, type Chunk, type NewItem } from './batch-store.js'
import type { JobListener } from './job-listener.js'

export interface SingleRequest {
  partnumber: string
  description?: string
  manufacturer?: string
  supplier?: string
  reclassify?: boolean
}

export interface BatchRequest {
  partnumbers: Array<{ partnumber: string; description?: string | null; manufacturer?: string | null; supplier?: string | null }>
  reclassify?: boolean
  documentId?: string
}

export interface ClassificationServiceDeps {
  pool: pg.Pool
  bus: MessageBus
  ai: AiClient
  listener: JobListener
  log: FastifyBaseLogger
  maxActiveJobsPerUser: number
  aiBatchSize: number
  batchMaxItems: number
  /** Sends the job's task_results message (after it ended here). */
  onJobFinished: (end: JobEnd) => void
  metrics: Metrics
}

const cleanText = (value: string | undefined | null) => (value?.trim() ? value.trim() : null)

/** One item per distinct part number, in order of first appearance; later duplicates fill in missing details. */
function distinctItems(requests: BatchRequest['partnumbers']): NewItem[] {
  const byCode = new Map<string, NewItem>()
  for (const request of requests) {
    const partnumber = normalizePartnumber(request.partnumber)
    if (!partnumber) continue
    const input = { description: cleanText(request.description), manufacturer: cleanText(request.manufacturer), supplier: cleanText(request.supplier) }
    const existing = byCode.get(partnumber)
    if (!existing) byCode.set(partnumber, { partnumber, input })
    else {
      existing.input = {
        description: existing.input.description ?? input.description,
        manufacturer: existing.input.manufacturer ?? input.manufacturer,
        supplier: existing.input.supplier ?? input.supplier,
      }
    }
  }
  return [...byCode.values()]
}

/**
 * The accepted classifications that may answer from history, by part number: those whose code is
 * still good in the current official NCM table (see servedFromHistory).
 */
async function acceptedClassifications(pool: pg.Pool, partnumbers: string[]): Promise<Map<string, string>> {
  const { rows } = await pool.query(
    `SELECT p.code, c.id, c.ncm FROM classifications c JOIN partnumbers p ON p.id = c.partnumber_id WHERE p.code = ANY($1) AND c.status = 'ACTIVE'`,
    [partnumbers],
  )
  const checks = await checkNcms(pool, rows.map((r) => r.ncm))
  return new Map(rows.filter((r) => servedFromHistory(checks.get(r.ncm)!)).map((r) => [r.code, r.id]))
}

/**
 * Whether an accepted classification still answers from history, checked against the current
 * official table: not when its code is no longer VALID there (expired, or the table was reorganised).
 * The part number then goes to the AI server again, as if it had no accepted classification: its
 * new answer is checked like any other (and waits for review if it is still not VALID), while the
 * old classification stays ACTIVE until a newer one is accepted. Answering such a part number
 * PENDING from history would only repeat a code known to be wrong, with no new suggestion.
 */
function servedFromHistory(check: NcmCheck): boolean {
  return ncmReasons(check).length === 0
}

/** Starts classification jobs: from history when a part number is already classified, else on the AI server. */
export function createClassificationService(deps: ClassificationServiceDeps) {
  const { pool, bus, ai, listener, log } = deps

  async function timed<T>(endpoint: 'single' | 'batch', call: () => Promise<T>): Promise<T> {
    const stop = deps.metrics.aiRequestSeconds.startTimer({ endpoint })
    try {
      const value = await call()
      stop({ outcome: 'started' })
      return value
    } catch (err) {
      stop({ outcome: 'refused' })
      throw err
    }
  }

  /** A job born done from the part number's accepted classification, with its audit event, in one statement. */
  async function answerFromHistory(owner: Identity, partnumber: string, input: JobInput): Promise<JobView | undefined> {
    const accepted = await findActiveClassification(pool, partnumber)
    if (!accepted || !servedFromHistory(accepted.ncm_check)) return undefined
    const job = await insertJob(pool, {
      ownerId: owner.id, kind: 'SINGLE', partnumber, input, channel: `history-${randomUUID()}`, source: 'HISTORY', classificationId: accepted.id,
    }, { doneEvent: { status: 'done', from_history: true, classification_id: accepted.id } })
    deps.metrics.jobsStarted.inc({ kind: 'SINGLE', source: 'HISTORY' })
    deps.onJobFinished({ jobId: job!.id, kind: 'SINGLE', status: 'DONE', reason: 'history' })
    return toJobView(job!, accepted)
  }

  /** Subscribe before you ask: without a live subscription the AI server's messages would be lost. */
  function ensureBusConnected() {
    if (!bus.isConnected()) throw new HttpError(503, 'message_bus_unavailable', 'The message bus is unavailable; try again shortly', { 'retry-after': '5' })
  }

  const tooManyActiveJobs = () => tooManyRequests(30, `You already have ${deps.maxActiveJobsPerUser} jobs running; wait for some to finish`)

  /** Within the transaction that will add a live job for `ownerId` (see claimJobSlot). */
  async function ensureCapacity(client: pg.PoolClient, ownerId: string) {
    ensureBusConnected()
    if (!(await claimJobSlot(client, ownerId, deps.maxActiveJobsPerUser))) throw tooManyActiveJobs()
  }

  /** POSTs the job to the AI server; if it will not start, the job fails at once with the reason. */
  async function sendToAi(job: JobRecord): Promise<JobRecord> {
    listener.track(job.channel, { id: job.id, attempt: job.attempt, kind: job.kind, partnumber: job.partnumber })
    try {
      const aiJobId = await timed('single', () => ai.startSingle({
        progress_channel: job.channel,
        partnumber: job.partnumber!,
        description: job.input.description,
        manufacturer: job.input.manufacturer,
        supplier: job.input.supplier,
      }))
      await recordAiJobId(pool, job.id, job.attempt, aiJobId)
      return { ...job, ai_job_id: aiJobId }
    } catch (err) {
      if (!(err instanceof AiStartError)) throw err
      log.warn({ jobId: job.id, reason: err.message }, 'AI server did not start the job')
      if (await finishJob(pool, job, { status: 'FAILED', error: err.message }, { hash: null, payload: { status: 'failed', error: err.message, by: 'gateway' } })) {
        deps.onJobFinished({ jobId: job.id, kind: job.kind, status: 'FAILED', reason: 'ai_start' })
      }
      throw new HttpError(502, 'ai_server_unavailable', err.message, {}, { job_id: job.id })
    }
  }

  /** Sends a batch's pending part numbers to the AI server, chunk by chunk, all chunks at once. */
  async function sendBatch(job: JobRecord, partnumbers: string[]): Promise<void> {
    const chunks: Chunk[] = []
    for (let i = 0; i < partnumbers.length; i += deps.aiBatchSize) {
      chunks.push({ chunk: chunks.length, channel: `progress-${randomUUID()}`, partnumbers: partnumbers.slice(i, i + deps.aiBatchSize) })
    }
    await insertChunks(pool, job.id, job.attempt, chunks)
    for (const c of chunks) listener.track(c.channel, { id: job.id, attempt: job.attempt, kind: 'BATCH', partnumber: null, chunk: c.chunk })
    const inputs = await itemInputs(pool, job.id, partnumbers)
    const failures = await Promise.all(chunks.map(async (c) => {
      try {
        const aiJobId = await timed('batch', () => ai.startBatch({
          progress_channel: c.channel,
          partnumbers: Object.fromEntries(c.partnumbers.map((pn) => {
            const input = inputs.get(pn)
            return [pn, { partnumber: pn, description: input?.description ?? null, manufacturer: input?.manufacturer ?? null, supplier: input?.supplier ?? null }]
          })),
        }))
        await recordChunkAiJobId(pool, job.id, job.attempt, c.chunk, aiJobId)
        return undefined
      } catch (err) {
        if (!(err instanceof AiStartError)) throw err
        log.warn({ jobId: job.id, chunk: c.chunk, reason: err.message }, 'AI server did not start a batch chunk')
        return { chunk: c.chunk, reason: err.message }
      }
    }))
    const failed = failures.filter((f) => f !== undefined)
    if (failed.length === chunks.length) {
      const reason = failed[0]!.reason
      if (await finishJob(pool, job, { status: 'FAILED', error: reason }, { hash: null, payload: { status: 'failed', error: reason, by: 'gateway' } })) {
        deps.onJobFinished({ jobId: job.id, kind: 'BATCH', status: 'FAILED', reason: 'ai_start' })
      }
      throw new HttpError(502, 'ai_server_unavailable', reason, {}, { job_id: job.id })
    }
    for (const f of failed) {
      if (await closeChunk(pool, job, f.chunk, 'FAILED', f.reason)) deps.onJobFinished({ jobId: job.id, kind: 'BATCH', status: 'DONE', reason: 'batch_done' })
    }
  }

  async function retriedEvent(client: pg.PoolClient, job: JobRecord, requester: Identity, partnumbers?: string[]) {
    await client.query(`INSERT INTO job_events (job_id, attempt, type, payload) VALUES ($1, $2, 'retried', $3)`,
      [job.id, job.attempt, partnumbers ? { by: requester.id, partnumbers } : { by: requester.id }])
  }

  /** A finished batch's items without a result, sent again as the batch's next attempt. */
  async function retryBatch(requester: Identity, existing: JobRecord): Promise<JobRecord> {
    if (!isTerminal(existing.status)) throw conflict('job_not_failed', `Only a finished batch can be retried; this one is ${existing.status}`)
    if ((await countItemsWithoutResult(pool, existing.id)) === 0) {
      throw conflict('nothing_to_retry', 'Every item of this batch has a result; there is nothing to retry')
    }
    const { job, partnumbers } = await inTransaction(pool, async (client) => {
      await ensureCapacity(client, existing.owner_id)
      const requeued = await requeueBatchFailedItems(client, existing.id, `progress-${randomUUID()}`)
      if (!requeued) throw conflict('job_not_failed', 'The job changed meanwhile; reload it')
      await retriedEvent(client, requeued.job, requester, requeued.partnumbers)
      return requeued
    })
    await sendBatch(job, partnumbers)
    return job
  }

  return {
    /** The job as the client first sees it (fresh from the AI server: no progress, no result yet). */
    async startSingle(owner: Identity, request: SingleRequest): Promise<JobView> {
      const partnumber = normalizePartnumber(request.partnumber)
      const input: JobInput = {
        description: cleanText(request.description),
        manufacturer: cleanText(request.manufacturer),
        supplier: cleanText(request.supplier),
      }
      if (!request.reclassify) {
        const fromHistory = await answerFromHistory(owner, partnumber, input)
        if (fromHistory) return fromHistory
      }
      ensureBusConnected()
      const job = await insertJob(pool, { ownerId: owner.id, kind: 'SINGLE', partnumber, input, channel: `progress-${randomUUID()}`, source: 'AI' }, {
        maxActive: deps.maxActiveJobsPerUser,
      })
      if (!job) throw tooManyActiveJobs()
      deps.metrics.jobsStarted.inc({ kind: 'SINGLE', source: 'AI' })
      return toJobView(await sendToAi(job), null)
    },

    /**
     * One batch job for many part numbers, one item per distinct part number. Items already
     * classified are answered from history; the rest go to the AI server in chunks of
     * `aiBatchSize`, each on its own channel.
     */
    async startBatch(owner: Identity, request: BatchRequest): Promise<JobRecord> {
      const items = distinctItems(request.partnumbers)
      if (items.length === 0) throw new HttpError(400, 'invalid_request', 'no part numbers to classify')
      if (items.length > deps.batchMaxItems) {
        throw new HttpError(400, 'too_many_items', `a batch takes at most ${deps.batchMaxItems} distinct part numbers; this one has ${items.length}`)
      }
      if (!request.reclassify) {
        const accepted = await acceptedClassifications(pool, items.map((i) => i.partnumber))
        for (const item of items) item.historyClassificationId = accepted.get(item.partnumber)
      }
      const toAi = items.filter((i) => !i.historyClassificationId).map((i) => i.partnumber)
      const job = await inTransaction(pool, async (client) => {
        if (toAi.length) await ensureCapacity(client, owner.id)
        const created = (await insertJob(client, {
          ownerId: owner.id, kind: 'BATCH', partnumber: null, input: { description: null, manufacturer: null, supplier: null },
          channel: `progress-${randomUUID()}`, source: toAi.length ? 'AI' : 'HISTORY', documentId: request.documentId,
        }))!
        await insertItems(client, created.id, items)
        if (!toAi.length) {
          await client.query(`UPDATE jobs SET status = 'DONE', finished_at = now(), progress_current = $2, progress_total = $2 WHERE id = $1`, [created.id, items.length])
          await client.query(`INSERT INTO job_events (job_id, attempt, type, payload, final) VALUES ($1, 1, 'done', $2, true)`, [created.id, { status: 'done', from_history: true }])
        } else {
          await client.query('UPDATE jobs SET progress_current = $2, progress_total = $3 WHERE id = $1', [created.id, items.length - toAi.length, items.length])
        }
        return created
      })
      deps.metrics.jobsStarted.inc({ kind: 'BATCH', source: toAi.length ? 'AI' : 'HISTORY' })
      if (!toAi.length) {
        deps.onJobFinished({ jobId: job.id, kind: 'BATCH', status: 'DONE', reason: 'history' })
        return job
      }
      await sendBatch(job, toAi)
      return job
    },

    /**
     * A new attempt of a finished job. A single job: only when it FAILED. A batch (DONE or FAILED):
     * only its items without a result (FAILED) go to the AI server again, on fresh channels; the
     * items that have a result keep it. The guarded requeue decides between concurrent retries.
     */
    async retry(requester: Identity, jobId: string): Promise<JobRecord> {
      const existing = await getJobRecord(pool, jobId)
      if (!existing || (existing.owner_id !== requester.id && requester.role !== 'ADMIN')) throw notFound('job')
      if (existing.kind === 'BATCH') return retryBatch(requester, existing)
      if (existing.status !== 'FAILED') throw conflict('job_not_failed', `Only a failed job can be retried; this one is ${existing.status}`)
      const job = await inTransaction(pool, async (client) => {
        await ensureCapacity(client, existing.owner_id)
        const requeued = await requeueFailedJob(client, jobId, `progress-${randomUUID()}`)
        if (!requeued) throw conflict('job_not_failed', 'The job changed meanwhile; reload it')
        await retriedEvent(client, requeued, requester)
        return requeued
      })
      return sendToAi(job)
    },
  }
}

export type ClassificationService = ReturnType<typeof createClassificationService>

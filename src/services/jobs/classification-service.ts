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
import { countActiveJobs, getJobRecord, insertJob, recordAiJobId, requeueFailedJob, type JobInput, type JobRecord } from './jobs-store.js'
import { finishJob } from './job-outcomes.js'
import type { JobListener } from './job-listener.js'

export interface SingleRequest {
  partnumber: string
  description?: string
  manufacturer?: string
  supplier?: string
  reclassify?: boolean
}

export interface ClassificationServiceDeps {
  pool: pg.Pool
  bus: MessageBus
  ai: AiClient
  listener: JobListener
  log: FastifyBaseLogger
  maxActiveJobsPerUser: number
  /** Sends the job's task_results message (after it ended here). */
  onJobFinished: (jobId: string) => void
}

const cleanText = (value: string | undefined) => (value?.trim() ? value.trim() : null)

/** Starts classification jobs: from history when a part number is already classified, else on the AI server. */
export function createClassificationService(deps: ClassificationServiceDeps) {
  const { pool, bus, ai, listener, log } = deps

  async function answerFromHistory(owner: Identity, partnumber: string, input: JobInput): Promise<JobRecord | undefined> {
    const accepted = await findActiveClassification(pool, partnumber)
    if (!accepted) return undefined
    const job = await inTransaction(pool, async (client) => {
      const created = await insertJob(client, {
        ownerId: owner.id, kind: 'SINGLE', partnumber, input, channel: `history-${randomUUID()}`, source: 'HISTORY', classificationId: accepted.id,
      })
      await client.query(
        `INSERT INTO job_events (job_id, attempt, type, payload, final) VALUES ($1, 1, 'done', $2, true)`,
        [created.id, { status: 'done', from_history: true, classification_id: accepted.id }],
      )
      return created
    })
    deps.onJobFinished(job.id)
    return job
  }

  async function ensureCapacity(owner: Identity) {
    if ((await countActiveJobs(pool, owner.id)) >= deps.maxActiveJobsPerUser) {
      throw tooManyRequests(30, `You already have ${deps.maxActiveJobsPerUser} jobs running; wait for some to finish`)
    }
    // Subscribe before you ask: without a live subscription the AI server's messages would be lost.
    if (!bus.isConnected()) throw new HttpError(503, 'message_bus_unavailable', 'The message bus is unavailable; try again shortly', { 'retry-after': '5' })
  }

  /** POSTs the job to the AI server; if it will not start, the job fails at once with the reason. */
  async function sendToAi(job: JobRecord): Promise<JobRecord> {
    listener.track(job)
    try {
      const aiJobId = await ai.startSingle({
        progress_channel: job.channel,
        partnumber: job.partnumber!,
        description: job.input.description,
        manufacturer: job.input.manufacturer,
        supplier: job.input.supplier,
      })
      await recordAiJobId(pool, job.id, job.attempt, aiJobId)
      return { ...job, ai_job_id: aiJobId }
    } catch (err) {
      if (!(err instanceof AiStartError)) throw err
      log.warn({ jobId: job.id, reason: err.message }, 'AI server did not start the job')
      if (await finishJob(pool, job, { status: 'FAILED', error: err.message }, { hash: null, payload: { status: 'failed', error: err.message, by: 'gateway' } })) {
        deps.onJobFinished(job.id)
      }
      throw new HttpError(502, 'ai_server_unavailable', err.message, {}, { job_id: job.id })
    }
  }

  return {
    async startSingle(owner: Identity, request: SingleRequest): Promise<JobRecord> {
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
      await ensureCapacity(owner)
      const job = await insertJob(pool, { ownerId: owner.id, kind: 'SINGLE', partnumber, input, channel: `progress-${randomUUID()}`, source: 'AI' })
      return sendToAi(job)
    },

    async retry(requester: Identity, jobId: string): Promise<JobRecord> {
      const existing = await getJobRecord(pool, jobId)
      if (!existing || (existing.owner_id !== requester.id && requester.role !== 'ADMIN')) throw notFound('job')
      if (existing.status !== 'FAILED') throw conflict('job_not_failed', `Only a failed job can be retried; this one is ${existing.status}`)
      await ensureCapacity(requester)
      const job = await requeueFailedJob(pool, jobId, `progress-${randomUUID()}`)
      if (!job) throw conflict('job_not_failed', 'The job changed meanwhile; reload it')
      await pool.query(`INSERT INTO job_events (job_id, attempt, type, payload) VALUES ($1, $2, 'retried', $3)`, [job.id, job.attempt, { by: requester.id }])
      return sendToAi(job)
    },
  }
}

export type ClassificationService = ReturnType<typeof createClassificationService>

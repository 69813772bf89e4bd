import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import type { ParsedMessage } from '../ai/messages.js'
import { isDatabaseUnavailable } from '../../db/errors.js'
import { findJobByChannel, getJobRecord, isTerminal, type JobKind } from './jobs-store.js'
import type { JobAttempt, JobEnd } from './job-outcomes.js'
import type { Metrics } from '../metrics/metrics.js'
import { findChunkByChannel } from './batch-store.js'
import { applyBatchMessage, applySingleMessage } from './apply-message.js'

export interface JobListenerOptions {
  pool: pg.Pool
  log: FastifyBaseLogger
  /** Called after this instance ended a job (it won the guarded update). */
  onJobFinished: (end: JobEnd) => void
  metrics?: Metrics
  retryDelayMs?: (failures: number) => number
}

export interface LiveJob extends JobAttempt {
  kind: JobKind
  /** Set for a batch chunk's channel. */
  chunk?: number
}

export interface JobListener {
  /**
   * Every message of every live job, whichever instance started it. `afterApply` runs once the
   * message is written (or found to need no write), in arrival order.
   */
  handle(channel: string, parsed: ParsedMessage, afterApply?: () => void): void
  /** Remembers a channel of a job this instance just started, sparing a lookup on its first message. */
  track(channel: string, job: LiveJob): void
  stats(): { queuedMessages: number; busyChannels: number; cachedJobs: number }
  /** Resolves when every message received so far has been written (or given up on). */
  drain(): Promise<void>
  close(): void
}

interface QueuedMessage {
  parsed: ParsedMessage
  afterApply?: () => void
  receivedAt: number
}

const MAX_CACHED = 50_000
const UNKNOWN_TTL_MS = 60_000

/**
 * Applies AI messages to the database. Messages of one channel are applied one after another,
 * in arrival order; channels proceed independently. While PostgreSQL is unreachable a channel's
 * messages wait in memory and are retried, so nothing received is lost while the process lives.
 */
export function createJobListener(options: JobListenerOptions): JobListener {
  const { pool, log } = options
  const retryDelayMs = options.retryDelayMs ?? ((failures) => Math.min(250 * 2 ** failures, 5_000))
  const jobsByChannel = new Map<string, LiveJob>()
  const unknownChannels = new Map<string, number>() // channel -> time it was found to have no job
  const queues = new Map<string, QueuedMessage[]>()
  let queuedMessages = 0
  let closed = false
  let idle: Array<() => void> = []

  function remember(channel: string, job: LiveJob) {
    if (jobsByChannel.size >= MAX_CACHED) jobsByChannel.delete(jobsByChannel.keys().next().value!)
    jobsByChannel.set(channel, job)
  }

  async function lookup(channel: string): Promise<LiveJob | undefined> {
    const job = await findJobByChannel(pool, channel)
    if (job) {
      // A batch job's own channel carries only the gateway's announcements, nothing to apply.
      return isTerminal(job.status) || job.kind === 'BATCH' ? undefined : { id: job.id, attempt: job.attempt, kind: job.kind }
    }
    const chunk = await findChunkByChannel(pool, channel)
    if (chunk) {
      const batch = await getJobRecord(pool, chunk.job_id)
      return batch && !isTerminal(batch.status) && batch.attempt === chunk.attempt
        ? { id: batch.id, attempt: batch.attempt, kind: 'BATCH', chunk: chunk.chunk }
        : undefined
    }
    if (unknownChannels.size >= MAX_CACHED) unknownChannels.clear()
    unknownChannels.set(channel, Date.now())
    log.warn({ channel }, 'AI message on a channel that no job owns; ignored')
    options.metrics?.aiMessages.inc({ outcome: 'unmatched' })
    return undefined
  }

  async function resolve(channel: string): Promise<LiveJob | undefined> {
    const cached = jobsByChannel.get(channel)
    if (cached) return cached
    const unknownSince = unknownChannels.get(channel)
    if (unknownSince !== undefined && Date.now() - unknownSince < UNKNOWN_TTL_MS) return undefined
    const live = await lookup(channel)
    if (live) remember(channel, live)
    return live
  }

  async function apply(channel: string, parsed: ParsedMessage): Promise<void> {
    if (!parsed.ok) {
      log.warn({ channel, reason: parsed.reason }, 'invalid AI message; ignored')
      options.metrics?.aiMessages.inc({ outcome: 'invalid' })
      return
    }
    const job = await resolve(channel)
    if (!job) return
    const applied = job.chunk === undefined
      ? await applySingleMessage(pool, job, parsed.message, parsed.hash, log)
      : await applyBatchMessage(pool, job, job.chunk, parsed.message, parsed.hash, log)
    options.metrics?.aiMessages.inc({ outcome: 'applied' })
    if (applied.channelEnded) jobsByChannel.delete(channel)
    if (applied.finished) options.onJobFinished(applied.finished)
  }

  async function run(channel: string, queue: QueuedMessage[]) {
    while (queue.length > 0 && !closed) {
      const { parsed, afterApply, receivedAt } = queue[0]!
      for (let failures = 0; ; failures++) {
        try {
          await apply(channel, parsed)
          options.metrics?.messageWriteSeconds.observe((performance.now() - receivedAt) / 1000)
          break
        } catch (err) {
          if (!isDatabaseUnavailable(err) || closed) {
            log.error({ err, channel }, 'could not apply AI message')
            break
          }
          if (failures === 0) {
            log.warn({ channel, err: (err as Error).message }, 'database unavailable; keeping the message and retrying')
            options.metrics?.databaseUnavailable.inc({ where: 'listener' })
          }
          await new Promise((r) => setTimeout(r, retryDelayMs(failures)))
        }
      }
      queue.shift()
      queuedMessages--
      afterApply?.()
    }
    queues.delete(channel)
    if (queues.size === 0) {
      const waiting = idle
      idle = []
      for (const resolveIdle of waiting) resolveIdle()
    }
  }

  return {
    handle(channel, parsed, afterApply) {
      if (closed) return
      queuedMessages++
      const queue = queues.get(channel)
      const receivedAt = performance.now()
      if (queue) {
        queue.push({ parsed, afterApply, receivedAt })
        return
      }
      const fresh = [{ parsed, afterApply, receivedAt }]
      queues.set(channel, fresh)
      void run(channel, fresh)
    },
    track(channel, job) {
      unknownChannels.delete(channel)
      remember(channel, job)
    },
    stats: () => ({ queuedMessages, busyChannels: queues.size, cachedJobs: jobsByChannel.size }),
    drain: () => (queues.size === 0 ? Promise.resolve() : new Promise<void>((r) => idle.push(r))),
    close() {
      closed = true
    },
  }
}

import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import type { ParsedMessage } from '../ai/messages.js'
import { isDatabaseUnavailable } from '../../db/errors.js'
import { findJobByChannel, isTerminal, type JobKind, type JobRecord } from './jobs-store.js'
import { finishJob, recordProgress, type JobAttempt } from './job-outcomes.js'
import { singleJobEvent } from './single-job-events.js'

interface LiveJob extends JobAttempt {
  kind: JobKind
}

export interface JobListenerOptions {
  pool: pg.Pool
  log: FastifyBaseLogger
  /** Called after this instance ended a job (it won the guarded update). */
  onJobFinished: (jobId: string) => void
  retryDelayMs?: (failures: number) => number
}

export interface JobListener {
  /**
   * Every message of every live job, whichever instance started it. `afterApply` runs once the
   * message is written (or found to need no write), in arrival order.
   */
  handle(channel: string, parsed: ParsedMessage, afterApply?: () => void): void
  /** Remembers a job this instance just started, sparing a lookup on its first message. */
  track(job: JobRecord): void
  stats(): { queuedMessages: number; busyChannels: number; cachedJobs: number }
  /** Resolves when every message received so far has been written (or given up on). */
  drain(): Promise<void>
  close(): void
}

interface QueuedMessage {
  parsed: ParsedMessage
  afterApply?: () => void
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

  async function resolve(channel: string): Promise<LiveJob | undefined> {
    const cached = jobsByChannel.get(channel)
    if (cached) return cached
    const unknownSince = unknownChannels.get(channel)
    if (unknownSince !== undefined && Date.now() - unknownSince < UNKNOWN_TTL_MS) return undefined
    const job = await findJobByChannel(pool, channel)
    if (!job) {
      if (unknownChannels.size >= MAX_CACHED) unknownChannels.clear()
      unknownChannels.set(channel, Date.now())
      log.warn({ channel }, 'AI message on a channel that no job owns; ignored')
      return undefined
    }
    if (isTerminal(job.status)) return undefined
    const live = { id: job.id, attempt: job.attempt, kind: job.kind }
    remember(channel, live)
    return live
  }

  async function apply(channel: string, parsed: ParsedMessage): Promise<void> {
    if (!parsed.ok) {
      log.warn({ channel, reason: parsed.reason }, 'invalid AI message; ignored')
      return
    }
    const job = await resolve(channel)
    if (!job) return
    const { message, hash } = parsed
    const event = singleJobEvent(message)
    switch (event.type) {
      case 'progress':
        await recordProgress(pool, job, event.progress, hash, { status: message.status, progress: event.progress, ai_job_id: message.jobId })
        return
      case 'ignored':
        log.warn({ channel, jobId: job.id, reason: event.reason }, 'AI message ignored')
        return
      case 'done':
      case 'failed': {
        const outcome = event.type === 'done' ? { status: 'DONE' as const, fields: event.fields } : { status: 'FAILED' as const, error: event.error }
        const payload = event.type === 'done' ? { status: 'done', result: event.fields } : { status: 'failed', error: event.error }
        const won = await finishJob(pool, job, outcome, { hash, payload: { ...payload, ai_job_id: message.jobId } })
        jobsByChannel.delete(channel)
        if (won) options.onJobFinished(job.id)
        return
      }
    }
  }

  async function run(channel: string, queue: QueuedMessage[]) {
    while (queue.length > 0 && !closed) {
      const { parsed, afterApply } = queue[0]!
      for (let failures = 0; ; failures++) {
        try {
          await apply(channel, parsed)
          break
        } catch (err) {
          if (!isDatabaseUnavailable(err) || closed) {
            log.error({ err, channel }, 'could not apply AI message')
            break
          }
          if (failures === 0) log.warn({ channel, err: (err as Error).message }, 'database unavailable; keeping the message and retrying')
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
      if (queue) {
        queue.push({ parsed, afterApply })
        return
      }
      const fresh = [{ parsed, afterApply }]
      queues.set(channel, fresh)
      void run(channel, fresh)
    },
    track(job) {
      unknownChannels.delete(job.channel)
      remember(job.channel, { id: job.id, attempt: job.attempt, kind: job.kind })
    },
    stats: () => ({ queuedMessages, busyChannels: queues.size, cachedJobs: jobsByChannel.size }),
    drain: () => (queues.size === 0 ? Promise.resolve() : new Promise<void>((r) => idle.push(r))),
    close() {
      closed = true
    },
  }
}

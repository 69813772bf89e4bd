import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import type { MessageBus } from '../bus/message-bus.js'
import { failSilentJobs, type JobEnd } from './job-outcomes.js'
import { unpublishedJobIds } from './task-results.js'

export interface JobSweeperOptions {
  pool: pg.Pool
  bus: MessageBus
  log: FastifyBaseLogger
  deadlineMs: number
  intervalMs: number
  /** Sends a finished job's task_results message. */
  publishResult: (jobId: string) => void
  /** A job this sweep ended. */
  onJobFinished: (end: JobEnd) => void
}

// A task_results message not out this long after its job ended is sent by the sweeper instead.
const PUBLISH_GRACE_MS = 10_000

/**
 * Periodic housekeeping that keeps promises the message flow alone cannot: a job silent past its
 * deadline is failed (its open streams told so on its channel), and a finished job whose
 * task_results message did not go out (Redis down, process killed) gets it.
 */
export function startJobSweeper(options: JobSweeperOptions): { stop(): void; sweep(): Promise<void> } {
  const { pool, bus, log } = options
  const minutes = Math.round(options.deadlineMs / 60_000)
  const reason = `Timed out: no word from the AI server for ${minutes >= 1 ? `${minutes} min` : `${Math.round(options.deadlineMs / 1000)} s`}`
  let running: Promise<void> | undefined

  async function sweep() {
    const ended = await failSilentJobs(pool, options.deadlineMs, reason)
    for (const job of ended) {
      log.warn({ jobId: job.id }, 'job failed by deadline')
      // Streams on every instance follow the job's channel: this tells them it is over.
      await bus.publish(job.channel, JSON.stringify({ status: 'failed', job_id: null, error: reason })).catch(() => {})
      options.onJobFinished({ jobId: job.id, kind: job.kind, status: 'FAILED', reason: 'deadline' })
    }
    for (const jobId of await unpublishedJobIds(pool, PUBLISH_GRACE_MS)) options.publishResult(jobId)
  }

  const timer = setInterval(() => {
    if (running) return
    running = sweep()
      .catch((err) => log.warn({ err: (err as Error).message }, 'job sweep failed; will try again'))
      .finally(() => { running = undefined })
  }, options.intervalMs)
  timer.unref()

  return {
    stop: () => clearInterval(timer),
    sweep,
  }
}

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
  /** Tells this instance's open streams when the job's channel could not carry the news (Redis down). */
  announceLocally?: (channel: string, message: string) => void
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
  const busReason = `${reason} (the message bus was down meanwhile; messages published then were lost)`
  const outages = new BusOutages(bus)
  let running: Promise<void> | undefined

  async function sweep() {
    // Silence that overlaps an outage of Redis seen here is most likely messages Redis dropped.
    const ended = await failSilentJobs(pool, options.deadlineMs, (silentMs) => (outages.since(Date.now() - silentMs) ? busReason : reason))
    for (const job of ended) {
      const busDown = job.error === busReason
      log.warn({ jobId: job.id, busDown }, 'job failed by deadline')
      // Streams on every instance follow the job's channel: this tells them it is over.
      const message = gatewayAnnouncement(job.error)
      await bus.publish(job.channel, message).catch(() => options.announceLocally?.(job.channel, message))
      options.onJobFinished({ jobId: job.id, kind: job.kind, status: 'FAILED', reason: busDown ? 'deadline_bus_down' : 'deadline' })
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

const ANNOUNCEMENT_MARK = ',"by":"gateway"}'

/** The `failed` message a sweeper publishes on a job's channel; its fixed ending tells it from the AI server's. */
export function gatewayAnnouncement(error: string): string {
  return `${JSON.stringify({ status: 'failed', job_id: null, error }).slice(0, -1)}${ANNOUNCEMENT_MARK}`
}

export const isGatewayAnnouncement = (raw: string) => raw.endsWith(ANNOUNCEMENT_MARK)

const MAX_OUTAGES = 1_000
const OUTAGE_MEMORY_MS = 7 * 24 * 3_600_000

/** The outages of the message bus this process has seen (as far back as a job can stay silent). */
export class BusOutages {
  private readonly spans: Array<{ from: number; to?: number }> = []

  constructor(bus: Pick<MessageBus, 'onConnectionChange'>, private readonly now: () => number = Date.now) {
    bus.onConnectionChange((connected) => (connected ? this.ended() : this.began()))
  }

  private began(): void {
    const last = this.spans.at(-1)
    if (last && last.to === undefined) return
    this.spans.push({ from: this.now() })
    const forgetBefore = this.now() - OUTAGE_MEMORY_MS
    while (this.spans.length > MAX_OUTAGES || (this.spans[0]?.to ?? Infinity) < forgetBefore) this.spans.shift()
  }

  private ended(): void {
    const last = this.spans.at(-1)
    if (last && last.to === undefined) last.to = this.now()
  }

  /** Whether the bus was down at any moment since `time` (epoch ms). */
  since(time: number): boolean {
    return this.spans.some((s) => (s.to ?? Infinity) >= time)
  }
}

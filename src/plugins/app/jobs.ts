import fp from 'fastify-plugin'
import { AiStartError, createAiClient, type AiClient } from '../../services/ai/ai-client.js'
import type { Metrics } from '../../services/metrics/metrics.js'
import { parseAiMessage } from '../../services/ai/messages.js'
import { createJobListener, type JobListener } from '../../services/jobs/job-listener.js'
import { ProgressHub } from '../../services/jobs/progress-hub.js'
import { SseRegistry } from '../../services/sse/sse-stream.js'
import { createClassificationService, type ClassificationService } from '../../services/jobs/classification-service.js'
import { publishTaskResult } from '../../services/jobs/task-results.js'
import { isGatewayAnnouncement, startJobSweeper } from '../../services/jobs/job-sweeper.js'
import type { JobEnd } from '../../services/jobs/job-outcomes.js'

declare module 'fastify' {
  interface FastifyInstance {
    hub: ProgressHub
    streams: SseRegistry
    jobListener: JobListener
    classifications: ClassificationService
  }
}

export const PROGRESS_PATTERN = 'progress-*'

/**
 * The live side of jobs: one subscription for every progress channel, feeding both the listener
 * (which writes the database) and the hub (which feeds open streams).
 */
export default fp(async (app) => {
  const { config, bus } = app
  const pool = app.pg.pool

  const { metrics } = app
  // Publications under way, so that a stop waits for them before it closes Redis and the pool
  // (a job claimed for publication and never published would never be announced).
  const publishing = new Set<Promise<unknown>>()
  const publishResult = (jobId: string) => {
    const publication = publishTaskResult(pool, bus, jobId).catch((err) =>
      app.log.warn({ jobId, err: (err as Error).message }, 'task_results not published yet; the sweeper will retry'))
    publishing.add(publication)
    void publication.finally(() => publishing.delete(publication))
  }
  const onJobFinished = (end: JobEnd) => {
    metrics.jobsFinished.inc({ kind: end.kind, status: end.status, reason: end.reason })
    publishResult(end.jobId)
  }

  const hub = new ProgressHub()
  const streams = new SseRegistry({
    heartbeatMs: config.sse.heartbeatMs, retryMs: config.sse.retryMs, maxBufferedBytes: config.sse.maxBufferedBytes,
    onCountChange: (open) => metrics.openStreams.set(open),
    onSlowReader: () => metrics.streamsDropped.inc(),
  })
  const listener = createJobListener({ pool, log: app.log, onJobFinished, metrics, onDatabaseUnavailable: () => app.database.markUnavailable() })
  const ai = countAiErrors(createAiClient(config.ai), metrics)
  metrics.probes.hubListeners = () => hub.counts().listeners
  metrics.probes.hubChannels = () => hub.counts().channels
  metrics.probes.listenerQueued = () => listener.stats().queuedMessages

  // Progress goes to the streams at once. Results and failures go once written, so that a client
  // told `done` finds the job done when it asks for it.
  await bus.listen(PROGRESS_PATTERN, (channel, raw) => {
    metrics.aiMessagesReceived.inc()
    const parsed = parseAiMessage(raw)
    if (!parsed.ok) return listener.handle(channel, parsed)
    const { message } = parsed
    if (isGatewayAnnouncement(raw)) return listener.handle(channel, parsed, () => hub.dispatch(channel, message), 'gateway')
    if (message.status === 'processing') {
      listener.handle(channel, parsed)
      hub.dispatch(channel, message)
    } else {
      listener.handle(channel, parsed, () => hub.dispatch(channel, message))
    }
  })

  const sweeper = startJobSweeper({
    pool, bus, log: app.log, deadlineMs: config.jobs.deadlineMs, intervalMs: config.jobs.sweepIntervalMs, publishResult, onJobFinished,
    // Redis down: at least this instance's streams learn that the job ended.
    announceLocally: (channel, raw) => {
      const parsed = parseAiMessage(raw)
      if (parsed.ok) hub.dispatch(channel, parsed.message)
    },
  })

  app.decorate('hub', hub)
  app.decorate('streams', streams)
  app.decorate('jobListener', listener)
  app.decorate('classifications', createClassificationService({
    pool, bus, ai, listener, log: app.log, onJobFinished, metrics,
    maxActiveJobsPerUser: config.jobs.maxActivePerUser, aiBatchSize: config.jobs.aiBatchSize, batchMaxItems: config.jobs.batchMaxItems,
  }))

  // Streams end first (with a retry hint) so the server can stop; then pending writes are flushed.
  app.addHook('preClose', async () => {
    sweeper.stop()
    streams.closeAll()
  })
  app.addHook('onClose', async () => {
    const gaveUp = new Promise((r) => setTimeout(r, config.shutdownGraceMs / 2).unref())
    await Promise.race([listener.drain(), gaveUp])
    listener.close()
    await Promise.race([Promise.allSettled([...publishing]), gaveUp])
    await ai.close()
  })
}, { name: 'jobs', dependencies: ['config', 'postgres', 'bus', 'metrics'] })

/** Counts the calls that did not start a job, by what went wrong (the client's message says it). */
function countAiErrors(ai: AiClient, metrics: Metrics): AiClient {
  const kind = (message: string) => {
    if (/did not answer within/.test(message)) return 'timeout'
    if (/unreachable/.test(message)) return 'unreachable'
    const status = /with status (\d)\d\d/.exec(message)
    if (status) return status[1] === '4' ? 'status_4xx' : status[1] === '5' ? 'status_5xx' : 'status_other'
    return 'bad_answer'
  }
  const counted = <T>(endpoint: 'single' | 'batch', call: () => Promise<T>) => call().catch((err: unknown) => {
    if (err instanceof AiStartError) metrics.aiRequestErrors.inc({ endpoint, error: kind(err.message) })
    throw err
  })
  return {
    startSingle: (payload) => counted('single', () => ai.startSingle(payload)),
    startBatch: (payload) => counted('batch', () => ai.startBatch(payload)),
    close: () => ai.close(),
  }
}

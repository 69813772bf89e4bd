import fp from 'fastify-plugin'
import { createAiClient } from '../../services/ai/ai-client.js'
import { parseAiMessage } from '../../services/ai/messages.js'
import { createJobListener, type JobListener } from '../../services/jobs/job-listener.js'
import { ProgressHub } from '../../services/jobs/progress-hub.js'
import { SseRegistry } from '../../services/sse/sse-stream.js'
import { createClassificationService, type ClassificationService } from '../../services/jobs/classification-service.js'
import { publishTaskResult } from '../../services/jobs/task-results.js'
import { startJobSweeper } from '../../services/jobs/job-sweeper.js'
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
  const publishResult = (jobId: string) => {
    publishTaskResult(pool, bus, jobId).catch((err) =>
      app.log.warn({ jobId, err: (err as Error).message }, 'task_results not published yet; the sweeper will retry'))
  }
  const onJobFinished = (end: JobEnd) => {
    metrics.jobsFinished.inc({ kind: end.kind, status: end.status, reason: end.reason })
    publishResult(end.jobId)
  }

  const hub = new ProgressHub()
  const streams = new SseRegistry({
    heartbeatMs: config.sse.heartbeatMs, retryMs: config.sse.retryMs, maxBufferedBytes: config.sse.maxBufferedBytes,
    onCountChange: (open) => metrics.openStreams.set(open),
  })
  const listener = createJobListener({ pool, log: app.log, onJobFinished, metrics })
  const ai = createAiClient(config.ai)

  // Progress goes to the streams at once. Results and failures go once written, so that a client
  // told `done` finds the job done when it asks for it.
  await bus.listen(PROGRESS_PATTERN, (channel, raw) => {
    const parsed = parseAiMessage(raw)
    if (!parsed.ok) return listener.handle(channel, parsed)
    const { message } = parsed
    if (message.status === 'processing') {
      listener.handle(channel, parsed)
      hub.dispatch(channel, message)
    } else {
      listener.handle(channel, parsed, () => hub.dispatch(channel, message))
    }
  })

  const sweeper = startJobSweeper({ pool, bus, log: app.log, deadlineMs: config.jobs.deadlineMs, intervalMs: config.jobs.sweepIntervalMs, publishResult, onJobFinished })

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
    await Promise.race([listener.drain(), new Promise((r) => setTimeout(r, config.shutdownGraceMs / 2).unref())])
    listener.close()
    await ai.close()
  })
}, { name: 'jobs', dependencies: ['config', 'postgres', 'bus', 'metrics'] })

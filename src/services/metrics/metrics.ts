import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** The gateway's Prometheus metrics, one registry per app (tests run several apps in one process). */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'nexa_' })
  const registers = [registry]
  // Read when scraped, from services created after the metrics.
  const probes: { hubListeners?: () => number; hubChannels?: () => number; listenerQueued?: () => number } = {}
  return {
    registry,
    probes,
    jobsStarted: new Counter({ name: 'nexa_jobs_started_total', help: 'Jobs started, by kind and source', labelNames: ['kind', 'source'], registers }),
    jobsFinished: new Counter({ name: 'nexa_jobs_finished_total', help: 'Jobs ended by this instance, by kind, status and reason', labelNames: ['kind', 'status', 'reason'], registers }),
    aiRequestSeconds: new Histogram({
      name: 'nexa_ai_request_duration_seconds', help: 'Calls to the AI server that start jobs, by endpoint and outcome',
      labelNames: ['endpoint', 'outcome'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    }),
    aiRequestErrors: new Counter({
      name: 'nexa_ai_request_errors_total', help: 'Calls to the AI server that did not start a job, by endpoint and error (unreachable, timeout, status_4xx, status_5xx, bad_answer)',
      labelNames: ['endpoint', 'error'], registers,
    }),
    aiMessagesReceived: new Counter({ name: 'nexa_ai_messages_received_total', help: 'Messages received on progress channels (from the AI server, or a sweeper\'s announcement)', registers }),
    aiMessages: new Counter({
      name: 'nexa_ai_messages_total',
      help: 'Messages from the AI server once handled, by outcome: applied, late_answer (a result after its job ended that revived it), '
        + 'kept_unmatched (a batch answer no item could take, kept on the job), invalid (not the contract), unmatched (no job owns the channel), '
        + 'late (the job had ended), duplicate, out_of_order (progress going back), unusable_result (a result that is not a usable object), '
        + 'announcement (a gateway\'s own notice of a job it failed), not_stored (progress streamed but not stored: the listener held its maximum of messages)',
      labelNames: ['outcome'], registers,
    }),
    messageWriteSeconds: new Histogram({
      name: 'nexa_ai_message_write_seconds', help: 'Time from a message\'s arrival to its write in PostgreSQL',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30], registers,
    }),
    openStreams: new Gauge({ name: 'nexa_sse_streams_open', help: 'Open Server-Sent Events streams', registers }),
    streamsDropped: new Counter({ name: 'nexa_sse_streams_dropped_total', help: 'Event streams closed by the server because the client did not read (its buffer passed SSE_MAX_BUFFERED_BYTES)', registers }),
    hubListeners: new Gauge({ name: 'nexa_progress_hub_listeners', help: 'Stream listeners registered on the progress hub', registers, collect() { this.set(probes.hubListeners?.() ?? 0) } }),
    hubChannels: new Gauge({ name: 'nexa_progress_hub_channels', help: 'Channels with at least one stream listening', registers, collect() { this.set(probes.hubChannels?.() ?? 0) } }),
    listenerQueued: new Gauge({
      name: 'nexa_job_listener_queued_messages', help: 'Messages received and not yet written (they wait here while PostgreSQL is unreachable)', registers,
      collect() { this.set(probes.listenerQueued?.() ?? 0) },
    }),
    reconnects: new Counter({ name: 'nexa_reconnects_total', help: 'Connections re-established after an outage, by service (redis, postgres)', labelNames: ['service'], registers }),
    databaseBusy: new Counter({ name: 'nexa_database_busy_total', help: 'Requests answered 503 database_busy: every pool connection busy for longer than the connection timeout', registers }),
    databaseUnavailable: new Counter({ name: 'nexa_database_unavailable_total', help: 'Operations that found PostgreSQL unreachable, by where', labelNames: ['where'], registers }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

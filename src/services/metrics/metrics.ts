import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** The gateway's Prometheus metrics, one registry per app (tests run several apps in one process). */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'nexa_' })
  const registers = [registry]
  return {
    registry,
    jobsStarted: new Counter({ name: 'nexa_jobs_started_total', help: 'Jobs started, by kind and source', labelNames: ['kind', 'source'], registers }),
    jobsFinished: new Counter({ name: 'nexa_jobs_finished_total', help: 'Jobs ended by this instance, by kind, status and reason', labelNames: ['kind', 'status', 'reason'], registers }),
    aiRequestSeconds: new Histogram({
      name: 'nexa_ai_request_duration_seconds', help: 'Calls to the AI server that start jobs, by endpoint and outcome',
      labelNames: ['endpoint', 'outcome'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers,
    }),
    aiMessages: new Counter({ name: 'nexa_ai_messages_total', help: 'Messages received from the AI server, by outcome (applied, invalid, unmatched)', labelNames: ['outcome'], registers }),
    messageWriteSeconds: new Histogram({
      name: 'nexa_ai_message_write_seconds', help: 'Time from a message\'s arrival to its write in PostgreSQL',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30], registers,
    }),
    openStreams: new Gauge({ name: 'nexa_sse_streams_open', help: 'Open Server-Sent Events streams', registers }),
    reconnects: new Counter({ name: 'nexa_reconnects_total', help: 'Connections re-established after an outage, by service', labelNames: ['service'], registers }),
    databaseUnavailable: new Counter({ name: 'nexa_database_unavailable_total', help: 'Operations that found PostgreSQL unreachable, by where', labelNames: ['where'], registers }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>

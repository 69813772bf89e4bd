// Messages between the benchmark process and its load processes (IPC, structured clone).

export interface Endpoint {
  host: string
  port: number
}

export interface StreamSpec {
  /** Global index of the stream: the publisher's channel index. */
  index: number
  path: string
}

export type LoadCommand =
  | { cmd: 'open'; target: Endpoint; headers: Record<string, string>; streams: StreamSpec[]; inflight: number; timeoutMs: number }
  | { cmd: 'storm'; inflight: number; timeoutMs: number }
  | { cmd: 'record'; on: boolean }
  | { cmd: 'report' }
  | { cmd: 'count' }
  | { cmd: 'close' }
  /**
   * POST /classifications for each part number. `ratePerSec` > 0: open loop, request i sent at i / rate s whatever
   * happened to the others; 0: closed loop, `connections` requests in flight. Nothing is sent after `durationMs`;
   * answers later than `timeoutMs` after their send are given up (counted as `timeout`).
   */
  | { cmd: 'post-jobs'; baseUrl: string; token: string; partnumbers: string[]; ratePerSec: number; connections: number; durationMs: number; timeoutMs: number }
  | { cmd: 'end-to-end'; target: Endpoint; token: string; partnumbers: string[]; timeoutMs: number }

export interface OpenResult {
  type: 'open'
  requested: number
  opened: number
  failed: number
  errors: Record<string, number>
  /** Per opened stream: from the connect call to the parse of its first event (the snapshot), ms. */
  connectMs: Float64Array
  /** From the first connect call to the last stream's first event (or failure), ms. */
  elapsedMs: number
  /** `retry:` values the server sent, with how many streams got each. */
  retryHints: Record<string, number>
}

export interface LatencyReport {
  type: 'report'
  /** Publish-to-parse latency of each progress event received while recording, ms. */
  latencyMs: Float64Array
  progressEvents: number
  outOfOrder: number
  /** Progress numbers skipped (a message lost between two received ones). */
  gaps: number
  /** Per stream (same order as opened): the last progress number received. */
  indexes: Int32Array
  last: Int32Array
  open: number
  ended: Record<string, number>
  /** This load process's own event-loop delay since recording started, ms: its lag is part of every latency it measures. */
  loopDelayMs: { p99: number; max: number }
}

export interface PostJobsResult {
  type: 'post-jobs'
  sent: number
  statuses: Record<string, number>
  /** Per accepted (202) request: from send to the full answer, ms. */
  acceptedMs: Float64Array
  jobIds: string[]
  /** Monotonic ns of the first send and of the last answer. */
  firstSendNs: number
  lastAnswerNs: number
}

export interface EndToEndResult {
  type: 'end-to-end'
  done: number
  errors: Record<string, number>
  /** POST sent to `done` event parsed, ms. */
  totalMs: Float64Array
  /** POST sent to its 202 answer, ms. */
  acceptMs: Float64Array
  jobIds: string[]
}

export type LoadReply = { type: 'count'; progressEvents: number } | OpenResult | LatencyReport | PostJobsResult | EndToEndResult | { type: 'closed'; closed: number } | { type: 'ok' } | { type: 'error'; message: string }

export type PublisherCommand =
  | { cmd: 'channels'; redisUrl: string; channels: string[] }
  | { cmd: 'publish'; ratePerSec: number; count: number }
  | { cmd: 'close' }

export type PublisherReply =
  | { type: 'ready' }
  | { type: 'published'; published: number; elapsedMs: number; perChannel: Int32Array; maxLagMs: number }
  | { type: 'error'; message: string }

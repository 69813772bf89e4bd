import { distribution, type Distribution } from './report.js'
import { split, type LoadPool } from './load-pool.js'
import type { LatencyReport, LoadReply, OpenResult } from './protocol.js'

// Opening, holding and reading many event streams through a LoadPool, on the gateway or the reference.

export interface StreamTarget {
  label: 'gateway' | 'reference'
  pid: number
  port: number
  headers: Record<string, string>
}

export interface Opened {
  requested: number
  opened: number
  failed: number
  errors: Record<string, number>
  connectMs: Distribution
  elapsedMs: number
  perSecond: number
  retryHints: Record<string, number>
}

function merge(results: OpenResult[]): Opened {
  const errors: Record<string, number> = {}
  const retryHints: Record<string, number> = {}
  for (const r of results) {
    for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v
    for (const [k, v] of Object.entries(r.retryHints)) retryHints[k] = (retryHints[k] ?? 0) + v
  }
  const opened = results.reduce((n, r) => n + r.opened, 0)
  const elapsedMs = Math.max(...results.map((r) => r.elapsedMs))
  const all = new Float64Array(results.reduce((n, r) => n + r.connectMs.length, 0))
  let at = 0
  for (const r of results) {
    all.set(r.connectMs, at)
    at += r.connectMs.length
  }
  return {
    requested: results.reduce((n, r) => n + r.requested, 0),
    opened,
    failed: results.reduce((n, r) => n + r.failed, 0),
    errors,
    connectMs: distribution(all),
    elapsedMs,
    perSecond: opened / (elapsedMs / 1000),
    retryHints,
  }
}

/** Opens one stream per job id, split over the pool; `inflight` connects at once in total (0: all at once). */
export async function openStreams(pool: LoadPool, target: StreamTarget, ids: string[], inflight: number, timeoutMs = 60_000): Promise<Opened> {
  const shares = split(ids.map((id, index) => ({ index, path: `/jobs/${id}/events` })), pool.size)
  const results = await pool.all<OpenResult>((i) => ({
    cmd: 'open', target: { host: '127.0.0.1', port: target.port }, headers: target.headers, streams: shares[i]!,
    inflight: inflight === 0 ? 0 : Math.max(1, Math.floor(inflight / pool.size)), timeoutMs,
  }), timeoutMs + Math.max(60_000, ids.length * 20))
  return merge(results)
}

/** Every stream drops and reconnects at once. */
export async function storm(pool: LoadPool, count: number, timeoutMs = 60_000): Promise<Opened> {
  return merge(await pool.all<OpenResult>(() => ({ cmd: 'storm', inflight: 0, timeoutMs }), timeoutMs + Math.max(60_000, count * 20)))
}

export async function closeStreams(pool: LoadPool): Promise<void> {
  await pool.all(() => ({ cmd: 'close' }), 60_000)
}

export async function record(pool: LoadPool, on: boolean): Promise<void> {
  await pool.all(() => ({ cmd: 'record', on }), 30_000)
}

export interface Received {
  latencyMs: Float64Array
  progressEvents: number
  outOfOrder: number
  gaps: number
  open: number
  ended: Record<string, number>
  /** Streams whose last progress number is not the last one published on their channel. */
  behind: number
  /** The load processes' own event-loop delay (the worst of them), ms. */
  loadLoopDelayMs: { p99: number; max: number }
}

/** What the streams received since recording started, checked against what was published per channel. */
export async function received(pool: LoadPool, perChannel?: Int32Array): Promise<Received> {
  const reports = await pool.all<LatencyReport>(() => ({ cmd: 'report' }), 60_000)
  const ended: Record<string, number> = {}
  let behind = 0
  for (const r of reports) {
    for (const [k, v] of Object.entries(r.ended)) ended[k] = (ended[k] ?? 0) + v
    if (perChannel) r.indexes.forEach((index, i) => { if (r.last[i] !== perChannel[index]) behind++ })
  }
  const latencyMs = new Float64Array(reports.reduce((n, r) => n + r.latencyMs.length, 0))
  let at = 0
  for (const r of reports) {
    latencyMs.set(r.latencyMs, at)
    at += r.latencyMs.length
  }
  return {
    latencyMs,
    progressEvents: reports.reduce((n, r) => n + r.progressEvents, 0),
    outOfOrder: reports.reduce((n, r) => n + r.outOfOrder, 0),
    gaps: reports.reduce((n, r) => n + r.gaps, 0),
    open: reports.reduce((n, r) => n + r.open, 0),
    ended,
    behind,
    loadLoopDelayMs: {
      p99: Math.max(...reports.map((r) => r.loopDelayMs.p99)),
      max: Math.max(...reports.map((r) => r.loopDelayMs.max)),
    },
  }
}

/**
 * Waits until the streams have received `expected` progress events since recording started, or
 * until nothing more arrives for `quietMs`; returns how long that took, in ms.
 */
export async function waitForDelivery(pool: LoadPool, expected: number, quietMs = 5_000, maxMs = 120_000): Promise<number> {
  const started = Date.now()
  let last = -1
  let lastChange = Date.now()
  for (;;) {
    const counts = await pool.all<{ type: 'count'; progressEvents: number } & LoadReply>(() => ({ cmd: 'count' }), 30_000)
    const got = counts.reduce((n, c) => n + c.progressEvents, 0)
    if (got >= expected) return Date.now() - started
    if (got !== last) {
      last = got
      lastChange = Date.now()
    }
    if (Date.now() - lastChange > quietMs || Date.now() - started > maxMs) return Date.now() - started
    await new Promise((r) => setTimeout(r, 200))
  }
}

export const channelsOf = (ids: string[]) => ids.map((id) => `progress-${id}`)

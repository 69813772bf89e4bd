import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import type { AiMessage, ParsedMessage, Progress } from '../ai/messages.js'
import { isDatabaseBusy, isDatabaseUnavailable } from '../../db/errors.js'
import { findChannelJobs, isTerminal, type JobKind } from './jobs-store.js'
import type { JobAttempt, JobEnd } from './job-outcomes.js'
import type { Metrics } from '../metrics/metrics.js'
import { applyBatchMessage, applySingleMessage } from './apply-message.js'
import { ProgressWriter } from './progress-writer.js'
import { BatchLoader } from '../../db/batch-loader.js'

export interface JobListenerOptions {
  pool: pg.Pool
  log: FastifyBaseLogger
  /** Called after this instance ended a job (it won the guarded update). */
  onJobFinished: (end: JobEnd) => void
  metrics?: Metrics
  retryDelayMs?: (failures: number) => number
  /** Called when a write found PostgreSQL unreachable. */
  onDatabaseUnavailable?: () => void
  /**
   * Most messages held in memory (waiting to be written, e.g. while PostgreSQL is unreachable);
   * beyond it, progress messages are not stored (streams still get them). Default 100,000.
   */
  maxQueuedMessages?: number
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
  handle(channel: string, parsed: ParsedMessage, afterApply?: () => void, from?: 'ai' | 'gateway'): void
  /**
   * The furthest progress received on a channel and not yet written: streams get progress before
   * it is stored, so a snapshot read meanwhile would show a client less than it has already seen.
   */
  unwrittenProgress(channel: string): Progress | undefined
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
  /** An instance's sweeper announcing a job it failed: written already, nothing to apply. */
  fromGateway: boolean
}

const MAX_CACHED = 50_000
const MAX_ENDED = 10_000
const UNKNOWN_TTL_MS = 60_000
// Hashes of the messages applied on a channel, to tell a repeated message from a new one.
const MAX_HASHES_PER_CHANNEL = 128

/**
 * A batch result that is not an object (the contract allows a plain string) names no part number;
 * its message still does ("Classificacao encontrada para o partnumber X"), so the item can be told.
 */
function withNamedPartnumber(message: AiMessage): AiMessage {
  if (message.status !== 'partial_result' || message.partnumber !== null) return message
  const named = /partnumber\s+(\S+)\s*$/i.exec(message.progress.message ?? '')?.[1]
  return named ? { ...message, partnumber: named.toUpperCase().slice(0, 100) } : message
}

/** What a channel is to this instance. */
type ChannelOwner =
  | { type: 'live'; job: LiveJob }
  | { type: 'ended'; jobId: string }
  /** A batch job's own channel: it carries only the gateway's announcements, nothing to apply. */
  | { type: 'announcements'; jobId: string }
  | { type: 'unknown' }

interface LiveChannel {
  job: LiveJob
  hashes: Set<string>
  /** The furthest progress seen (processing messages). */
  furthest: number
}

/** What became of one message; every message gets exactly one (counted in nexa_ai_messages_total). */
type Outcome = 'applied' | 'invalid' | 'unmatched' | 'late' | 'duplicate' | 'out_of_order' | 'unusable_result' | 'announcement' | 'not_stored'

/**
 * Applies AI messages to the database. Messages of one channel are applied one after another,
 * in arrival order; channels proceed independently. While PostgreSQL is unreachable a channel's
 * messages wait in memory and are retried, so nothing received is lost while the process lives.
 * A message that is not applied (invalid, for no job, after the job's end, repeated) is logged once,
 * with its job when there is one, and counted.
 */
export function createJobListener(options: JobListenerOptions): JobListener {
  const { pool, log } = options
  // Progress messages of all channels arriving together are written with one statement.
  const progressWriter = new ProgressWriter({ pool })
  const retryDelayMs = options.retryDelayMs ?? ((failures) => Math.min(250 * 2 ** failures, 5_000))
  const live = new Map<string, LiveChannel>()
  const ended = new Map<string, { jobId: string; hashes: Set<string> }>()
  const unknownChannels = new Map<string, number>() // channel -> time it was found to have no job
  const queues = new Map<string, QueuedMessage[]>()
  let queuedMessages = 0
  const maxQueued = options.maxQueuedMessages ?? 100_000
  // Progress messages not stored since the listener reached maxQueued (0 when below it).
  let notStored = 0
  let closed = false
  let idle: Array<() => void> = []

  function remember(channel: string, job: LiveJob) {
    if (live.size >= MAX_CACHED) live.delete(live.keys().next().value!)
    live.set(channel, { job, hashes: new Set(), furthest: -1 })
  }

  function rememberEnded(channel: string, jobId: string, hashes = new Set<string>()) {
    live.delete(channel)
    if (ended.size >= MAX_ENDED) ended.delete(ended.keys().next().value!)
    ended.set(channel, { jobId, hashes })
  }

  // Messages on channels not seen before (jobs started by other instances, or before a restart)
  // arriving within a few milliseconds are looked up with one query: a burst of new channels
  // (a restart under load) costs tens of queries a second instead of one per turn of the loop.
  const channelJobs = new BatchLoader((channels: string[]) => findChannelJobs(pool, channels), { gatherMs: 10 })

  async function lookup(channel: string): Promise<ChannelOwner> {
    const job = await channelJobs.load(channel)
    if (!job) return { type: 'unknown' }
    if (job.chunk) {
      return !isTerminal(job.status) && job.attempt === job.chunk.attempt
        ? { type: 'live', job: { id: job.id, attempt: job.attempt, kind: 'BATCH', chunk: job.chunk.number } }
        : { type: 'ended', jobId: job.id }
    }
    if (job.kind === 'BATCH') return { type: 'announcements', jobId: job.id }
    if (isTerminal(job.status)) return { type: 'ended', jobId: job.id }
    return { type: 'live', job: { id: job.id, attempt: job.attempt, kind: job.kind } }
  }

  /** Who owns the channel, if this instance knows already (no promise to wait for: most messages take this way). */
  function known(channel: string): ChannelOwner | undefined {
    const cached = live.get(channel)
    if (cached) return { type: 'live', job: cached.job }
    const gone = ended.get(channel)
    if (gone) return { type: 'ended', jobId: gone.jobId }
    const unknownSince = unknownChannels.get(channel)
    if (unknownSince !== undefined && Date.now() - unknownSince < UNKNOWN_TTL_MS) return { type: 'unknown' }
    return undefined
  }

  /** Who owns a channel this instance does not know yet, asked of the database and remembered. */
  async function findOut(channel: string): Promise<ChannelOwner> {
    const owner = await lookup(channel)
    if (owner.type === 'live') remember(channel, owner.job)
    else if (owner.type === 'ended') rememberEnded(channel, owner.jobId)
    else if (owner.type === 'unknown') {
      if (unknownChannels.size >= MAX_CACHED) unknownChannels.clear()
      unknownChannels.set(channel, Date.now())
    }
    return owner
  }

  const hashKey = (hash: Buffer) => hash.toString('base64', 0, 16)

  // One counter child per outcome, bound once (prom-client hashes the labels on every call otherwise).
  const outcomeCounters = new Map<Outcome, { inc(): void }>()
  function count(outcome: Outcome) {
    if (!options.metrics) return
    let counter = outcomeCounters.get(outcome)
    if (!counter) outcomeCounters.set(outcome, (counter = options.metrics.aiMessages.labels({ outcome })))
    counter.inc()
  }

  /** Applies one message; returns what became of it (and whether it meant a write). */
  async function apply(channel: string, parsed: ParsedMessage, fromGateway: boolean): Promise<Outcome> {
    if (fromGateway) {
      const cached = live.get(channel)
      if (cached) rememberEnded(channel, cached.job.id, cached.hashes)
      return 'announcement'
    }
    if (!parsed.ok) {
      // Said with its job when the channel has one (a failed lookup, PostgreSQL down, does not hold it back).
      const owner = known(channel) ?? await findOut(channel).catch(() => undefined)
      const jobId = owner && 'jobId' in owner ? owner.jobId : owner?.type === 'live' ? owner.job.id : undefined
      log.warn({ channel, jobId, reason: parsed.reason }, 'invalid AI message; ignored')
      return 'invalid'
    }
    const remembered = known(channel)
    const { owner, fresh } = remembered ? { owner: remembered, fresh: false } : { owner: await findOut(channel), fresh: true }
    const key = hashKey(parsed.hash)
    switch (owner.type) {
      case 'unknown':
        // Logged once per channel (a stray publisher may send many), counted every time.
        if (fresh) log.warn({ channel, status: parsed.message.status }, 'AI message on a channel that no job owns; ignored')
        return 'unmatched'
      case 'announcements':
        return 'announcement'
      case 'ended': {
        const repeated = ended.get(channel)?.hashes.has(key) ?? false
        log.warn({ channel, jobId: owner.jobId, status: parsed.message.status }, repeated ? 'repeated AI message after the job ended; ignored' : 'AI message after the job ended; ignored')
        return repeated ? 'duplicate' : 'late'
      }
      case 'live':
        break
    }
    const job = owner.job
    const state = live.get(channel)
    if (state?.hashes.has(key)) {
      log.warn({ channel, jobId: job.id, status: parsed.message.status }, 'repeated AI message; ignored')
      return 'duplicate'
    }
    const message = withNamedPartnumber(parsed.message)
    const backwards = message.status === 'processing' && state !== undefined && message.progress.current < state.furthest
    const applied = job.chunk === undefined
      ? await applySingleMessage(pool, progressWriter, job, message, parsed.hash, log)
      : await applyBatchMessage(pool, job, job.chunk, message, parsed.hash, log)
    if (state) {
      if (state.hashes.size >= MAX_HASHES_PER_CHANNEL) state.hashes.delete(state.hashes.values().next().value!)
      state.hashes.add(key)
      if (message.status === 'processing') state.furthest = Math.max(state.furthest, message.progress.current)
    }
    if (applied.channelEnded) rememberEnded(channel, job.id, state?.hashes)
    if (applied.finished) options.onJobFinished(applied.finished)
    if (backwards) {
      log.warn({ channel, jobId: job.id, current: message.progress.current, furthest: state!.furthest }, 'AI progress went backwards; stored, the job keeps its furthest progress')
      return 'out_of_order'
    }
    const unusable = (message.status === 'done' || message.status === 'partial_result') && message.result !== null && !message.result.ok
    if (unusable) {
      log.warn({ channel, jobId: job.id, status: message.status, reason: message.result!.ok ? undefined : message.result!.reason }, 'AI server sent an unusable result; stored as a failure')
      return 'unusable_result'
    }
    return 'applied'
  }

  async function run(channel: string, queue: QueuedMessage[]) {
    while (queue.length > 0 && !closed) {
      const { parsed, afterApply, receivedAt, fromGateway } = queue[0]!
      for (let failures = 0; ; failures++) {
        try {
          const outcome = await apply(channel, parsed, fromGateway)
          count(outcome)
          if (outcome === 'applied' || outcome === 'out_of_order' || outcome === 'unusable_result') {
            options.metrics?.messageWriteSeconds.observe((performance.now() - receivedAt) / 1000)
          }
          break
        } catch (err) {
          const unavailable = isDatabaseUnavailable(err)
          // A busy pool (overload) is retried as patiently as an outage, without calling it one.
          if ((!unavailable && !isDatabaseBusy(err)) || closed) {
            log.error({ err, channel }, 'could not apply AI message')
            break
          }
          if (unavailable) options.onDatabaseUnavailable?.()
          if (failures === 0 && unavailable) {
            log.warn({ channel, err: (err as Error).message }, 'database unavailable; keeping the message and retrying')
            options.metrics?.databaseUnavailable.inc({ where: 'listener' })
          }
          await new Promise((r) => setTimeout(r, retryDelayMs(failures)))
        }
      }
      queue.shift()
      queuedMessages--
      if (notStored > 0 && queuedMessages <= maxQueued / 2) {
        log.info({ notStored }, 'the listener holds fewer messages again; progress is stored again')
        notStored = 0
      }
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
    handle(channel, parsed, afterApply, from = 'ai') {
      if (closed) return
      // Memory is not unlimited: a long outage of PostgreSQL under load gives up the audit rows of
      // progress first (the job's own progress follows its next message); results, failures and
      // announcements are always kept.
      if (queuedMessages >= maxQueued && parsed.ok && parsed.message.status === 'processing' && from === 'ai') {
        if (notStored++ === 0) log.warn({ queuedMessages }, 'the listener holds its maximum of messages (PostgreSQL unreachable or too slow); progress messages are streamed but not stored until it catches up')
        count('not_stored')
        return
      }
      queuedMessages++
      const queue = queues.get(channel)
      const entry = { parsed, afterApply, receivedAt: performance.now(), fromGateway: from === 'gateway' }
      if (queue) {
        queue.push(entry)
        return
      }
      const fresh = [entry]
      queues.set(channel, fresh)
      void run(channel, fresh)
    },
    unwrittenProgress(channel) {
      // A channel's queue holds its messages until they are written (the one being written first).
      let furthest: Progress | undefined
      for (const { parsed, fromGateway } of queues.get(channel) ?? []) {
        if (fromGateway || !parsed.ok || parsed.message.status !== 'processing') continue
        if (!furthest || parsed.message.progress.current >= furthest.current) furthest = parsed.message.progress
      }
      return furthest
    },
    track(channel, job) {
      unknownChannels.delete(channel)
      ended.delete(channel)
      remember(channel, job)
    },
    stats: () => ({ queuedMessages, busyChannels: queues.size, cachedJobs: live.size }),
    drain: () => (queues.size === 0 ? Promise.resolve() : new Promise<void>((r) => idle.push(r))),
    close() {
      closed = true
    },
  }
}

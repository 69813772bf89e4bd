import type pg from 'pg'
import type { FastifyBaseLogger } from 'fastify'
import type { AiMessage, ParsedMessage, Progress } from '../ai/messages.js'
import { isDatabaseBusy, isDatabaseUnavailable } from '../../db/errors.js'
import { findChannelJobs, isTerminal, type JobKind } from './jobs-store.js'
import type { JobAttempt, JobEnd } from './job-outcomes.js'
import type { Metrics } from '../metrics/metrics.js'
import { applyBatchMessage, applyLateSingleMessage, applySingleMessage, NOTHING, type Applied } from './apply-message.js'
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
  /** A single job's part number (its answers are checked against it); null for a batch. */
  partnumber: string | null
  /** Set for a batch chunk's channel (its attempt is the chunk's). */
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
  /**
   * Learns a live job's channel from a fresh read made for something else (an event stream's
   * snapshot of a job another instance started, or one started before a restart), sparing the
   * lookup of its first message here. What the listener knows of the channel already stays.
   */
  learn(channel: string, job: LiveJob): void
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
  /** Tries that found the database unreachable or busy so far. */
  failures: number
  /** Its channel was looked up for it (an unknown channel is said once, on that lookup). */
  lookedUp: boolean
}

const MAX_CACHED = 50_000
const MAX_ENDED = 10_000
const UNKNOWN_TTL_MS = 60_000
// Hashes of the messages applied on a channel, to tell a repeated message from a new one.
const MAX_HASHES_PER_CHANNEL = 128

/** What a channel is to this instance. */
type ChannelOwner =
  | { type: 'live'; job: LiveJob }
  | { type: 'ended'; job: LiveJob }
  /** A batch job's own channel: it carries only the gateway's announcements, nothing to apply. */
  | { type: 'announcements'; jobId: string }
  | { type: 'unknown' }

/**
 * What the listener keeps of a live job's channel (one for every open stream's job, so kept
 * small); it is also the channel's owner as `known` answers it.
 */
interface LiveChannel {
  type: 'live'
  job: LiveJob
  /** Hashes of the messages applied, made with the first one. */
  hashes?: Set<string>
  /** The furthest progress seen (processing messages). */
  furthest: number
}

interface EndedChannel {
  type: 'ended'
  job: LiveJob
  hashes?: Set<string>
}

/** What became of one message; every message gets exactly one (counted in nexa_ai_messages_total). */
type Outcome = 'applied' | 'late_answer' | 'kept_unmatched' | 'invalid' | 'unmatched' | 'late' | 'duplicate' | 'out_of_order' | 'unusable_result' | 'announcement' | 'not_stored'

/** A message being applied: its outcome now, later, or (a progress write in flight) told by the write's callback. */
const WRITING = Symbol('progress write in flight')
type Applying = Outcome | typeof WRITING | Promise<Outcome | typeof WRITING>

const UNKNOWN: ChannelOwner = { type: 'unknown' }

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
  const ended = new Map<string, EndedChannel>()
  const unknownChannels = new Map<string, number>() // channel -> time it was found to have no job
  // A channel keeps its (empty) queue for a while after its messages are through: a map that took
  // and dropped an entry for every message rebuilt its table all the time, and each table it
  // dropped had been moved to the old generation already (bench/README.md). Swept every 30 s.
  const queues = new Map<string, QueuedMessage[]>()
  const sweepQueues = setInterval(() => {
    for (const [channel, queue] of queues) if (queue.length === 0) queues.delete(channel)
  }, 30_000).unref()
  // Channels whose messages are being applied; the listener is idle at zero.
  let busyChannels = 0
  let queuedMessages = 0
  const maxQueued = options.maxQueuedMessages ?? 100_000
  // Progress messages not stored since the listener reached maxQueued (0 when below it).
  let notStored = 0
  let closed = false
  let idle: Array<() => void> = []

  function remember(channel: string, job: LiveJob) {
    if (live.size >= MAX_CACHED) live.delete(live.keys().next().value!)
    live.set(channel, { type: 'live', job, furthest: -1 })
  }

  function rememberEnded(channel: string, job: LiveJob, hashes?: Set<string>) {
    live.delete(channel)
    if (ended.size >= MAX_ENDED) ended.delete(ended.keys().next().value!)
    ended.set(channel, { type: 'ended', job, hashes })
  }

  // Messages on channels not seen before (jobs started by other instances, or before a restart)
  // arriving within a few milliseconds are looked up with one query: a burst of new channels
  // (a restart under load) costs tens of queries a second instead of one per turn of the loop.
  const channelJobs = new BatchLoader((channels: string[]) => findChannelJobs(pool, channels), { gatherMs: 10 })

  async function lookup(channel: string): Promise<ChannelOwner> {
    const job = await channelJobs.load(channel)
    if (!job) return UNKNOWN
    // A chunk's answers are applied whenever they come: a late one still finds its item.
    if (job.chunk) return { type: 'live', job: { id: job.id, attempt: job.chunk.attempt, kind: 'BATCH', partnumber: null, chunk: job.chunk.number } }
    if (job.kind === 'BATCH') return { type: 'announcements', jobId: job.id }
    const single: LiveJob = { id: job.id, attempt: job.attempt, kind: job.kind, partnumber: job.partnumber }
    return isTerminal(job.status) ? { type: 'ended', job: single } : { type: 'live', job: single }
  }

  /** Who owns the channel, if this instance knows already (most messages: no lookup, nothing allocated). */
  function known(channel: string): ChannelOwner | undefined {
    const owner = live.get(channel) ?? ended.get(channel)
    if (owner) return owner
    const unknownSince = unknownChannels.get(channel)
    if (unknownSince !== undefined && Date.now() - unknownSince < UNKNOWN_TTL_MS) return UNKNOWN
    return undefined
  }

  /** Who owns a channel this instance does not know yet, asked of the database and remembered. */
  async function findOut(channel: string): Promise<ChannelOwner> {
    const owner = await lookup(channel)
    if (owner.type === 'live') remember(channel, owner.job)
    else if (owner.type === 'ended') rememberEnded(channel, owner.job)
    else if (owner.type === 'unknown') {
      if (unknownChannels.size >= MAX_CACHED) unknownChannels.clear()
      unknownChannels.set(channel, Date.now())
    }
    return owner
  }

  // 16 of the hash's 32 bytes, as a one-byte string: the cheapest key a Set can hold for it.
  const hashKey = (hash: Buffer) => hash.toString('latin1', 0, 16)

  // One counter child per outcome, bound once (prom-client hashes the labels on every call otherwise).
  const outcomeCounters = new Map<Outcome, { inc(): void }>()
  function count(outcome: Outcome) {
    if (!options.metrics) return
    let counter = outcomeCounters.get(outcome)
    if (!counter) outcomeCounters.set(outcome, (counter = options.metrics.aiMessages.labels({ outcome })))
    counter.inc()
  }

  /** Applies a channel's first waiting message, once its owner is known (looked up when it is not). */
  function apply(channel: string, queue: QueuedMessage[], entry: QueuedMessage): Applying {
    if (entry.fromGateway) {
      const cached = live.get(channel)
      if (cached) rememberEnded(channel, cached.job, cached.hashes)
      return 'announcement'
    }
    const { parsed } = entry
    const owner = known(channel)
    if (!parsed.ok) {
      // Said with its job when the channel has one; a failed lookup (PostgreSQL down) does not hold it back.
      if (owner) return invalid(channel, parsed.reason, owner)
      return findOut(channel).then((found) => invalid(channel, parsed.reason, found), () => invalid(channel, parsed.reason, undefined))
    }
    if (owner) return applyTo(channel, queue, entry, parsed, owner)
    entry.lookedUp = true
    return findOut(channel).then((found) => applyTo(channel, queue, entry, parsed, found))
  }

  function invalid(channel: string, reason: string, owner: ChannelOwner | undefined): Outcome {
    const jobId = owner?.type === 'live' || owner?.type === 'ended' ? owner.job.id : owner?.type === 'announcements' ? owner.jobId : undefined
    log.warn({ channel, jobId, reason }, 'invalid AI message; ignored')
    return 'invalid'
  }

  /**
   * Applies a valid message to its channel's owner. Progress of a single job, nearly every
   * message, takes no promise: the ProgressWriter's callback finishes it and moves the channel on.
   */
  function applyTo(channel: string, queue: QueuedMessage[], entry: QueuedMessage, parsed: Extract<ParsedMessage, { ok: true }>, owner: ChannelOwner): Applying {
    const key = hashKey(parsed.hash)
    switch (owner.type) {
      case 'unknown':
        // Logged once per channel (a stray publisher may send many), counted every time.
        if (entry.lookedUp) log.warn({ channel, status: parsed.message.status }, 'AI message on a channel that no job owns; ignored')
        return 'unmatched'
      case 'announcements':
        return 'announcement'
      case 'ended':
        return applyLate(channel, owner, key, parsed)
      case 'live':
        break
    }
    const { job } = owner
    const state = live.get(channel)
    if (state?.hashes?.has(key)) {
      log.warn({ channel, jobId: job.id, status: parsed.message.status }, 'repeated AI message; ignored')
      return 'duplicate'
    }
    const { message } = parsed
    const backwards = message.status === 'processing' && state !== undefined && message.progress.current < state.furthest
    const done = (applied: Applied) => afterApplied(channel, job, state, key, message, applied, backwards)
    if (job.chunk !== undefined) return applyBatchMessage(pool, job, job.chunk, message, parsed.hash, log).then(done)
    if (message.status !== 'processing') return applySingleMessage(pool, { ...job, partnumber: job.partnumber! }, message, parsed.hash, log).then(done)
    progressWriter.record(job, parsed.hash, { status: message.status, progress: message.progress, ai_job_id: message.jobId }, (err) => {
      if (err === undefined) settle(channel, queue, done(NOTHING))
      else failed(channel, queue, err)
    })
    return WRITING
  }

  /**
   * A message on the channel of a single job that has ended: a result may revive a job failed by
   * its deadline, or replace a result waiting for review (see applyLateSingleMessage); anything else is late.
   */
  function applyLate(channel: string, owner: EndedChannel, key: string, parsed: Extract<ParsedMessage, { ok: true }>): Applying {
    const { job } = owner
    const { message } = parsed
    const repeated = owner.hashes?.has(key) ?? false
    const ignore = (): Outcome => {
      log.warn({ channel, jobId: job.id, status: message.status }, repeated ? 'repeated AI message after the job ended; ignored' : 'AI message after the job ended; ignored')
      return repeated ? 'duplicate' : 'late'
    }
    if (repeated || message.status !== 'done' || job.partnumber === null) return ignore()
    return applyLateSingleMessage(pool, { ...job, partnumber: job.partnumber }, message, parsed.hash, log).then((applied) => {
      if (!applied?.finished) return ignore()
      log.info({ channel, jobId: job.id }, 'late AI answer applied: the job is DONE with it')
      const hashes = (owner.hashes ??= new Set())
      hashes.add(key)
      options.onJobFinished(applied.finished)
      return 'late_answer'
    })
  }

  /** What a live job's message came to, once written: the channel's state moved on, the job's end told. */
  function afterApplied(channel: string, job: LiveJob, state: LiveChannel | undefined, key: string, message: AiMessage, applied: Applied, backwards: boolean): Outcome {
    if (state) {
      const hashes = (state.hashes ??= new Set())
      if (hashes.size >= MAX_HASHES_PER_CHANNEL) hashes.delete(hashes.values().next().value!)
      hashes.add(key)
      if (message.status === 'processing') state.furthest = Math.max(state.furthest, message.progress.current)
    }
    if (applied.channelEnded) rememberEnded(channel, job, state?.hashes)
    if (applied.finished) options.onJobFinished(applied.finished)
    if (backwards && message.status === 'processing') {
      log.warn({ channel, jobId: job.id, current: message.progress.current, furthest: state!.furthest }, 'AI progress went backwards; stored, the job keeps its furthest progress')
      return 'out_of_order'
    }
    if (applied.outcome) return applied.outcome
    const unusable = (message.status === 'done' || message.status === 'partial_result') && message.result !== null && !message.result.ok
    if (unusable) {
      log.warn({ channel, jobId: job.id, status: message.status, reason: message.result!.ok ? undefined : message.result!.reason }, 'AI server sent an unusable result; stored as a failure')
      return 'unusable_result'
    }
    return 'applied'
  }

  /**
   * Applies a channel's messages one after another, in arrival order: in one go while they need
   * no write, and from the write's completion (`settle`, `failed`) when one does.
   */
  function advance(channel: string, queue: QueuedMessage[]): void {
    while (queue.length > 0 && !closed) {
      let applying: Applying
      try {
        applying = apply(channel, queue, queue[0]!)
      } catch (err) {
        return failed(channel, queue, err)
      }
      if (applying === WRITING) return
      if (typeof applying === 'string') {
        done(queue, applying)
        continue
      }
      applying.then((outcome) => (outcome === WRITING ? undefined : settle(channel, queue, outcome)), (err) => failed(channel, queue, err))
      return
    }
    busyChannels--
    if (busyChannels === 0) {
      const waiting = idle
      idle = []
      for (const resolveIdle of waiting) resolveIdle()
    }
  }

  function settle(channel: string, queue: QueuedMessage[], outcome: Outcome) {
    done(queue, outcome)
    advance(channel, queue)
  }

  /** The first message could not be applied: retried while the database is unreachable or busy, else given up. */
  function failed(channel: string, queue: QueuedMessage[], err: unknown): void {
    const entry = queue[0]!
    const unavailable = isDatabaseUnavailable(err)
    // A busy pool (overload) is retried as patiently as an outage, without calling it one.
    if ((!unavailable && !isDatabaseBusy(err)) || closed) {
      log.error({ err, channel }, 'could not apply AI message')
      done(queue, undefined)
      return advance(channel, queue)
    }
    if (unavailable) options.onDatabaseUnavailable?.()
    if (entry.failures === 0 && unavailable) {
      log.warn({ channel, err: (err as Error).message }, 'database unavailable; keeping the message and retrying')
      options.metrics?.databaseUnavailable.inc({ where: 'listener' })
    }
    setTimeout(() => advance(channel, queue), retryDelayMs(entry.failures++))
  }

  /** The first message is through (`outcome` undefined: given up on after an error, logged already). */
  function done(queue: QueuedMessage[], outcome: Outcome | undefined) {
    const { afterApply, receivedAt } = queue.shift()!
    if (outcome) {
      count(outcome)
      if (outcome === 'applied' || outcome === 'out_of_order' || outcome === 'unusable_result') {
        options.metrics?.messageWriteSeconds.observe((performance.now() - receivedAt) / 1000)
      }
    }
    queuedMessages--
    if (notStored > 0 && queuedMessages <= maxQueued / 2) {
      log.info({ notStored }, 'the listener holds fewer messages again; progress is stored again')
      notStored = 0
    }
    afterApply?.()
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
      let queue = queues.get(channel)
      if (!queue) queues.set(channel, (queue = []))
      // A queue with messages is being applied already; an empty one starts now.
      if (queue.push({ parsed, afterApply, receivedAt: performance.now(), fromGateway: from === 'gateway', failures: 0, lookedUp: false }) > 1) return
      busyChannels++
      advance(channel, queue)
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
    learn(channel, job) {
      if (live.has(channel) || ended.has(channel)) return
      unknownChannels.delete(channel)
      remember(channel, job)
    },
    stats: () => ({ queuedMessages, busyChannels, cachedJobs: live.size }),
    drain: () => (busyChannels === 0 ? Promise.resolve() : new Promise<void>((r) => idle.push(r))),
    close() {
      closed = true
      clearInterval(sweepQueues)
    },
  }
}

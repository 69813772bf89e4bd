import { fork, type ChildProcess } from 'node:child_process'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { residentMb } from '../resident-memory.js'
import { isPdfRejectCode, PdfRejectedError } from './errors.js'
import type { JobMessage, ReplyMessage } from './extraction-child.js'
import type { ExtractionResult, ExtractOptions } from './types.js'

export type ExtractionPoolErrorCode = 'queue_full' | 'closed' | 'worker_failed'

const POOL_STATUS: Record<ExtractionPoolErrorCode, number> = {
  queue_full: 503,
  closed: 503,
  worker_failed: 500,
}

/** The pool could not run the job (as opposed to the PDF being rejected). */
export class ExtractionPoolError extends Error {
  override readonly name = 'ExtractionPoolError'
  readonly code: ExtractionPoolErrorCode
  readonly statusCode: number

  constructor(code: ExtractionPoolErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.statusCode = POOL_STATUS[code]
  }
}

export interface ExtractionPoolOptions {
  /** Child processes; default 1 on machines with up to 2 cores (leaving one for the event loop), else 2. */
  size?: number
  /** Jobs allowed to wait for a free child; more are refused with `queue_full` (default 32). */
  maxQueue?: number
  /** Time budget per document from hand-over to a child; a child still busy then is killed and replaced (default 30 s). */
  timeoutMs?: number
  /** Budgets passed to the extractor, for every job (defaults: see ExtractOptions). */
  maxPages?: number
  maxTextItems?: number
  maxTextOperators?: number
  maxDecompressedBytes?: number
  /** Memory budget per child in MiB: its V8 heap limit, and the resident size at which a busy child is killed (default 1024). */
  maxMemoryMb?: number
  /** A child whose resident memory grew by more than this (MiB) since it was ready is replaced by a fresh one after its job (default 256). */
  recycleGrowthMb?: number
}

export interface ExtractJobOptions {
  maxPages?: number
  timeoutMs?: number
}

interface Job {
  id: number
  data: Uint8Array
  options: ExtractOptions
  timeoutMs: number
  resolve: (result: ExtractionResult) => void
  reject: (err: Error) => void
}

interface Slot {
  child: ChildProcess
  job: Job | null
  /** Watches the running job's time and memory. */
  watch: NodeJS.Timeout | null
  ready: boolean
  /** Resident memory once ready (MiB): what a job's growth is measured from. */
  readyMb: number
  /** Set once the child is being killed or has died, so that it is replaced only once. */
  retired: boolean
}

// Run the compiled child next to us in dist/, or the TypeScript source when we are source too.
const extension = path.extname(fileURLToPath(import.meta.url))
const CHILD_URL = new URL(`./extraction-child${extension === '.ts' ? '.ts' : '.js'}`, import.meta.url)
// From source (tests, `npm run dev`) the child needs tsx, as the gateway does. pdfjs is imported
// first, before tsx registers its hooks: through them, its 4 MB of JavaScript would make every start
// ten times slower and three times larger. By URL, so that both resolve whatever the working directory.
const LOADER_ARGS = extension === '.ts' ? ['--import', importsOf(['pdfjs-dist/legacy/build/pdf.mjs', 'pdfjs-dist/legacy/build/pdf.worker.mjs']), '--import', import.meta.resolve('tsx')] : []

/** A module (as a data: URL) that imports these, resolved from here. */
function importsOf(specifiers: string[]): string {
  const source = specifiers.map((specifier) => `import ${JSON.stringify(import.meta.resolve(specifier))};`).join('\n')
  return `data:text/javascript,${encodeURIComponent(source)}`
}

/** Children that die before ever becoming ready this many times in a row mean a broken install: stop respawning. */
const MAX_STARTUP_FAILURES = 3
/** How often a busy child's time and resident memory are checked. */
const WATCH_MS = 100

/**
 * A small fixed pool of child processes running extractPartNumbers, so that pdfjs's CPU-heavy
 * parsing never blocks the event loop, and a document that exhausts a child's memory or crashes it
 * costs that child only: the job is refused, the child replaced, the gateway untouched. Jobs beyond
 * the free children wait in a bounded FIFO queue.
 */
export class ExtractionPool {
  private readonly slots: Slot[] = []
  private readonly queue: Job[] = []
  /** Every child not yet gone, replaced ones included, for close() to wait for. */
  private readonly children = new Set<ChildProcess>()
  private readonly maxQueue: number
  private readonly timeoutMs: number
  private readonly budgets: ExtractOptions
  private readonly maxMemoryMb: number
  private readonly recycleGrowthMb: number
  private nextId = 1
  private closed = false
  private startupFailures = 0
  private broken: Error | null = null

  constructor(options: ExtractionPoolOptions = {}) {
    const size = options.size ?? (availableParallelism() <= 2 ? 1 : 2)
    if (!Number.isInteger(size) || size < 1) throw new RangeError('pool size must be a positive integer')
    this.maxQueue = options.maxQueue ?? 32
    this.timeoutMs = options.timeoutMs ?? 30_000
    const { maxPages, maxTextItems, maxTextOperators, maxDecompressedBytes } = options
    this.budgets = { maxPages, maxTextItems, maxTextOperators, maxDecompressedBytes }
    this.maxMemoryMb = options.maxMemoryMb ?? 1024
    this.recycleGrowthMb = options.recycleGrowthMb ?? 256
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
  }

  /**
   * Extract part numbers in a child process. The bytes are copied to the child when a child takes
   * the job: leave them unchanged until the promise settles.
   * @throws PdfRejectedError for unusable documents and documents over a budget, ExtractionPoolError when the pool cannot run the job
   */
  extract(pdf: Uint8Array, options: ExtractJobOptions = {}): Promise<ExtractionResult> {
    if (this.closed) return Promise.reject(new ExtractionPoolError('closed', 'The extraction pool is closed.'))
    if (this.broken) return Promise.reject(this.broken)
    const idle = this.slots.find((s) => s.ready && !s.job && !s.retired)
    if (!idle && this.queue.length >= this.maxQueue) {
      return Promise.reject(new ExtractionPoolError('queue_full', 'Too many PDFs are waiting for extraction; try again shortly.'))
    }
    return new Promise<ExtractionResult>((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        data: pdf,
        options: { ...this.budgets, ...(options.maxPages === undefined ? {} : { maxPages: options.maxPages }) },
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        resolve,
        reject,
      }
      if (idle) this.run(idle, job)
      else this.queue.push(job)
    })
  }

  stats(): { workers: number; ready: number; busy: number; queued: number; pids: number[] } {
    return {
      workers: this.slots.length,
      ready: this.slots.filter((s) => s.ready).length,
      busy: this.slots.filter((s) => s.job).length,
      queued: this.queue.length,
      pids: this.slots.flatMap((s) => (s.child.pid === undefined ? [] : [s.child.pid])),
    }
  }

  /** Resolves once every child has loaded pdfjs (useful before measuring, or at startup). */
  async ready(): Promise<void> {
    while (!this.closed && !this.broken && this.slots.some((s) => !s.ready)) await new Promise((r) => setTimeout(r, 10))
  }

  /** Refuse new jobs, fail pending ones with `closed`, and kill the children (resolves once they have exited). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const error = () => new ExtractionPoolError('closed', 'The extraction pool was closed.')
    for (const job of this.queue.splice(0)) job.reject(error())
    for (const slot of this.slots.splice(0)) this.retire(slot, error())
    const running = [...this.children].filter((child) => child.pid !== undefined && child.exitCode === null && child.signalCode === null)
    await Promise.all(
      running.map((child) => {
        child.ref() // an unreferenced child would let the process end before this resolves
        return new Promise((resolve) => child.once('exit', resolve))
      }),
    )
  }

  private spawn(): Slot {
    const child = fork(CHILD_URL, [], {
      execArgv: [...LOADER_ARGS, `--max-old-space-size=${this.maxMemoryMb}`],
      serialization: 'advanced', // the PDF travels as bytes, not as JSON
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    const slot: Slot = { child, job: null, watch: null, ready: false, readyMb: 0, retired: false }
    this.children.add(child)
    child.on('message', (reply: ReplyMessage) => {
      if (reply.type === 'done') return this.settle(slot, reply)
      slot.ready = true
      slot.readyMb = reply.rssMb
      this.startupFailures = 0
      // An idle child must not keep the process alive; a busy one is held by its watch timer.
      child.unref()
      child.channel?.unref()
      this.next(slot)
    })
    child.on('error', (err) => this.replace(slot, new ExtractionPoolError('worker_failed', 'The extraction process failed.', { cause: err })))
    // A crash mid-job (a native fault, or V8's heap limit where no watch sees the memory) is not
    // told apart from other deaths: the job fails with worker_failed (503).
    child.on('exit', (code, signal) => {
      this.children.delete(child)
      this.replace(slot, new ExtractionPoolError('worker_failed', `The extraction process exited (${signal ?? `code ${code}`}).`))
    })
    return slot
  }

  private run(slot: Slot, job: Job): void {
    slot.job = job
    const message: JobMessage = { id: job.id, data: job.data, options: job.options }
    slot.child.send(message, (err) => {
      if (err) this.replace(slot, new ExtractionPoolError('worker_failed', 'The PDF could not be handed to the extraction process.', { cause: err }))
    })
    const started = performance.now()
    slot.watch = setInterval(async () => {
      if (performance.now() - started > job.timeoutMs) {
        const seconds = job.timeoutMs / 1000
        return this.replace(slot, new PdfRejectedError('too_complex', `The PDF takes longer than ${seconds} s to read; at most ${seconds} s are allowed.`))
      }
      const rss = await residentMb(slot.child.pid!)
      if (slot.job === job && rss !== undefined && rss > this.maxMemoryMb) {
        const mb = this.maxMemoryMb
        this.replace(slot, new PdfRejectedError('too_complex', `The PDF needs more than ${mb} MB of memory to read; at most ${mb} MB are allowed.`))
      }
    }, WATCH_MS)
  }

  private settle(slot: Slot, reply: Extract<ReplyMessage, { type: 'done' }>): void {
    const job = slot.job
    if (!job || job.id !== reply.id || slot.retired) return
    this.endJob(slot)
    if (reply.ok) job.resolve(reply.result)
    else job.reject(reviveError(reply.error))
    // A fresh child gives back what a large document left behind (V8 keeps its grown heap).
    if (reply.rssMb - slot.readyMb > this.recycleGrowthMb) this.replace(slot, null)
    else this.next(slot)
  }

  private endJob(slot: Slot): void {
    if (slot.watch) clearInterval(slot.watch)
    slot.watch = null
    slot.job = null
  }

  /** Fail the slot's job (if any) with `error`, kill its child and put a fresh one in its place. */
  private replace(slot: Slot, error: Error | null): void {
    if (slot.retired) return
    this.retire(slot, error)
    const index = this.slots.indexOf(slot)
    if (index < 0 || this.closed) return
    if (!slot.ready && error instanceof ExtractionPoolError && error.code === 'worker_failed' && ++this.startupFailures >= MAX_STARTUP_FAILURES) {
      this.broken = new ExtractionPoolError('worker_failed', 'The extraction processes fail to start.', { cause: error })
      for (const job of this.queue.splice(0)) job.reject(this.broken)
      this.slots.splice(index, 1)
      return
    }
    this.slots[index] = this.spawn() // queued jobs go to it once it is ready
  }

  private retire(slot: Slot, error: Error | null): void {
    slot.retired = true
    if (error) slot.job?.reject(error)
    this.endJob(slot)
    slot.child.kill('SIGKILL')
  }

  private next(slot: Slot): void {
    const job = this.queue.shift()
    if (job) this.run(slot, job)
  }
}

export function createExtractionPool(options?: ExtractionPoolOptions): ExtractionPool {
  return new ExtractionPool(options)
}

function reviveError(error: { name: string; message: string; code?: string }): Error {
  if (error.name === 'PdfRejectedError' && isPdfRejectCode(error.code)) return new PdfRejectedError(error.code, error.message)
  return new ExtractionPoolError('worker_failed', error.message)
}

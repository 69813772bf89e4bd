import { availableParallelism } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { isPdfRejectCode, PdfRejectedError } from './errors.js'
import type { JobMessage, ReplyMessage } from './extraction-worker.js'
import type { ExtractionResult } from './types.js'

export type ExtractionPoolErrorCode = 'queue_full' | 'timeout' | 'closed' | 'worker_failed'

const POOL_STATUS: Record<ExtractionPoolErrorCode, number> = {
  queue_full: 503,
  timeout: 503,
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
  /** Worker threads; default 1 on machines with up to 2 cores (leaving one for the event loop), else 2. */
  size?: number
  /** Jobs allowed to wait for a free worker; more are refused with `queue_full` (default 32). */
  maxQueue?: number
  /** Per-job limit from hand-over to the worker; a worker still busy then is terminated and replaced (default 30 s). */
  timeoutMs?: number
  /** Default page limit passed to the extractor (default 300). */
  maxPages?: number
  /** Heap limit per worker; a PDF that needs more fails with `worker_failed` instead of exhausting the host (default 1024). */
  maxMemoryMb?: number
}

export interface ExtractJobOptions {
  maxPages?: number
  timeoutMs?: number
  /**
   * Hand the bytes to the worker without copying (default true). The caller's buffer is then
   * detached (length 0) as soon as extract() is called; pass false to keep using it afterwards.
   */
  transfer?: boolean
}

interface Job {
  id: number
  data: ArrayBuffer
  maxPages: number | undefined
  timeoutMs: number
  resolve: (result: ExtractionResult) => void
  reject: (err: Error) => void
}

interface Slot {
  worker: Worker
  job: Job | null
  timer: NodeJS.Timeout | null
  ready: boolean
  /** Set once the worker is being terminated or has died, so that it is replaced only once. */
  retired: boolean
}

// Run the compiled worker next to us in dist/, or the TypeScript source when we are source too.
const extension = path.extname(fileURLToPath(import.meta.url))
const WORKER_URL = new URL(`./extraction-worker${extension === '.ts' ? '.ts' : '.js'}`, import.meta.url)

/**
 * From source, the worker needs tsx. `--import tsx` provides it where tsx registers itself in worker
 * threads (Node 22.22+, 24.11+); on Node 20 tsx skips workers, so when the plain import of the .ts
 * entry fails this bootstrap registers tsx's API in the worker and imports the entry again (under a
 * new URL, since the failed load is cached).
 */
const TS_BOOTSTRAP = `
const { workerData } = require('node:worker_threads')
import(workerData.entry).catch(async (err) => {
  if (!err || err.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err
  const { register } = await import(workerData.tsxApi)
  register()
  await import(workerData.entry + '?tsx')
})
`

function startWorker(maxMemoryMb: number): Worker {
  const resourceLimits = { maxOldGenerationSizeMb: maxMemoryMb }
  if (extension !== '.ts') return new Worker(WORKER_URL, { resourceLimits })
  return new Worker(TS_BOOTSTRAP, {
    eval: true,
    resourceLimits,
    execArgv: ['--import', 'tsx'],
    workerData: { entry: WORKER_URL.href, tsxApi: import.meta.resolve('tsx/esm/api') },
  })
}

/** Workers that die before ever becoming ready this many times in a row mean a broken install: stop respawning. */
const MAX_STARTUP_FAILURES = 3

/**
 * A small fixed pool of worker threads running extractPartNumbers, so that pdfjs's CPU-heavy parsing
 * never blocks the event loop. Jobs beyond the free workers wait in a bounded FIFO queue.
 */
export class ExtractionPool {
  private readonly slots: Slot[] = []
  private readonly queue: Job[] = []
  private readonly maxQueue: number
  private readonly timeoutMs: number
  private readonly maxPages: number | undefined
  private readonly maxMemoryMb: number
  private nextId = 1
  private closed = false
  private startupFailures = 0
  private broken: Error | null = null

  constructor(options: ExtractionPoolOptions = {}) {
    const size = options.size ?? (availableParallelism() <= 2 ? 1 : 2)
    if (!Number.isInteger(size) || size < 1) throw new RangeError('pool size must be a positive integer')
    this.maxQueue = options.maxQueue ?? 32
    this.timeoutMs = options.timeoutMs ?? 30_000
    this.maxPages = options.maxPages
    this.maxMemoryMb = options.maxMemoryMb ?? 1024
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
  }

  /**
   * Extract part numbers in a worker. By default the bytes are transferred, not copied, when `pdf`
   * spans its whole ArrayBuffer, and the caller's buffer is then detached (empty): hash or store it
   * before calling, or pass `{ transfer: false }`. Slices, Node's pooled small Buffers and
   * SharedArrayBuffers are always copied.
   * @throws PdfRejectedError for unusable documents, ExtractionPoolError when the pool cannot run the job
   */
  extract(pdf: Uint8Array, options: ExtractJobOptions = {}): Promise<ExtractionResult> {
    if (this.closed) return Promise.reject(new ExtractionPoolError('closed', 'The extraction pool is closed.'))
    if (this.broken) return Promise.reject(this.broken)
    const idle = this.slots.find((s) => !s.job && !s.retired)
    if (!idle && this.queue.length >= this.maxQueue) {
      return Promise.reject(new ExtractionPoolError('queue_full', 'Too many PDFs are waiting for extraction; try again shortly.'))
    }
    return new Promise<ExtractionResult>((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        data: options.transfer === false ? copyOf(pdf) : transferable(pdf),
        maxPages: options.maxPages ?? this.maxPages,
        timeoutMs: options.timeoutMs ?? this.timeoutMs,
        resolve,
        reject,
      }
      if (idle) this.run(idle, job)
      else this.queue.push(job)
    })
  }

  stats(): { workers: number; ready: number; busy: number; queued: number; threadIds: number[] } {
    return {
      workers: this.slots.length,
      ready: this.slots.filter((s) => s.ready).length,
      busy: this.slots.filter((s) => s.job).length,
      queued: this.queue.length,
      threadIds: this.slots.map((s) => s.worker.threadId),
    }
  }

  /** Resolves once every worker has loaded pdfjs (useful before measuring, or at startup). */
  async ready(): Promise<void> {
    while (!this.closed && !this.broken && this.slots.some((s) => !s.ready)) await new Promise((r) => setTimeout(r, 10))
  }

  /** Refuse new jobs, fail pending ones with `closed`, and terminate the workers (resolves once they have exited). */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const error = () => new ExtractionPoolError('closed', 'The extraction pool was closed.')
    for (const job of this.queue.splice(0)) job.reject(error())
    const slots = this.slots.splice(0)
    await Promise.all(
      slots.map(async (slot) => {
        slot.retired = true
        if (slot.timer) clearTimeout(slot.timer)
        slot.job?.reject(error())
        slot.job = null
        await slot.worker.terminate()
      }),
    )
  }

  private spawn(): Slot {
    const worker = startWorker(this.maxMemoryMb)
    const slot: Slot = { worker, job: null, timer: null, ready: false, retired: false }
    worker.unref() // an idle pool must not keep the process alive
    worker.on('message', (reply: ReplyMessage) => {
      if (reply.type === 'ready') {
        slot.ready = true
        this.startupFailures = 0
      } else {
        this.settle(slot, reply)
      }
    })
    worker.on('error', (err) => this.replace(slot, new ExtractionPoolError('worker_failed', 'The extraction worker crashed.', { cause: err })))
    worker.on('exit', (code) => this.replace(slot, new ExtractionPoolError('worker_failed', `The extraction worker exited (code ${code}).`)))
    return slot
  }

  private run(slot: Slot, job: Job): void {
    slot.job = job
    slot.worker.ref()
    slot.timer = setTimeout(() => {
      this.replace(slot, new ExtractionPoolError('timeout', `PDF extraction took longer than ${job.timeoutMs} ms.`))
    }, job.timeoutMs)
    const message: JobMessage = { id: job.id, data: job.data, ...(job.maxPages === undefined ? {} : { maxPages: job.maxPages }) }
    slot.worker.postMessage(message, [job.data])
  }

  private settle(slot: Slot, reply: Extract<ReplyMessage, { type: 'done' }>): void {
    const job = slot.job
    if (!job || job.id !== reply.id || slot.retired) return
    if (slot.timer) clearTimeout(slot.timer)
    slot.timer = null
    slot.job = null
    slot.worker.unref()
    if (reply.ok) job.resolve(reply.result)
    else job.reject(reviveError(reply.error))
    this.next(slot)
  }

  /** Fail the slot's job (if any), terminate its worker and put a fresh one in its place. */
  private replace(slot: Slot, error: Error): void {
    if (slot.retired) return
    slot.retired = true
    if (slot.timer) clearTimeout(slot.timer)
    slot.job?.reject(error)
    slot.job = null
    void slot.worker.terminate()
    const index = this.slots.indexOf(slot)
    if (index < 0 || this.closed) return
    if (!slot.ready && error instanceof ExtractionPoolError && error.code === 'worker_failed' && ++this.startupFailures >= MAX_STARTUP_FAILURES) {
      this.broken = new ExtractionPoolError('worker_failed', 'The extraction workers fail to start.', { cause: error })
      for (const job of this.queue.splice(0)) job.reject(this.broken)
      this.slots.splice(index, 1)
      return
    }
    const fresh = this.spawn()
    this.slots[index] = fresh
    this.next(fresh)
  }

  private next(slot: Slot): void {
    const job = this.queue.shift()
    if (job) this.run(slot, job)
  }
}

export function createExtractionPool(options?: ExtractionPoolOptions): ExtractionPool {
  return new ExtractionPool(options)
}

function transferable(pdf: Uint8Array): ArrayBuffer {
  const { buffer } = pdf
  if (buffer instanceof ArrayBuffer && pdf.byteOffset === 0 && pdf.byteLength === buffer.byteLength) return buffer
  return copyOf(pdf)
}

function copyOf(pdf: Uint8Array): ArrayBuffer {
  return new Uint8Array(pdf).buffer as ArrayBuffer
}

function reviveError(error: { name: string; message: string; code?: string }): Error {
  if (error.name === 'PdfRejectedError' && isPdfRejectCode(error.code)) return new PdfRejectedError(error.code, error.message)
  return new ExtractionPoolError('worker_failed', error.message)
}

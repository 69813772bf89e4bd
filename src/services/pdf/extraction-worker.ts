/**
 * Worker-thread entry: runs the extractor for the extraction pool, one job at a time.
 * Loaded as .ts through tsx in development and tests, as .js from dist/ in production.
 */
import { parentPort } from 'node:worker_threads'
import { PdfRejectedError } from './errors.js'
import { extractOwned } from './extract.js'
import { warmUp } from './read-pdf.js'
import type { ExtractionResult } from './types.js'

export interface JobMessage {
  id: number
  data: ArrayBuffer
  maxPages?: number
}

export type ReplyMessage =
  | { type: 'ready' }
  | { type: 'done'; id: number; ok: true; result: ExtractionResult }
  | { type: 'done'; id: number; ok: false; error: { name: string; message: string; code?: string } }

const port = parentPort
if (!port) throw new Error('extraction-worker must run in a worker thread')

// pdfjs inflates content streams through DecompressionStream when there is one, i.e. node:zlib.
// A worker terminated (timeout, close) between a zlib handle's creation and its init aborts the
// whole process in Node's cleanup ("close before init"), so this worker leaves zlib alone and
// pdfjs uses its own inflater, which gives the same bytes at the same speed.
delete (globalThis as { DecompressionStream?: unknown }).DecompressionStream

// Jobs that arrive meanwhile wait for it; a failed warm-up only means the first job is slower.
const ready = warmUp()
  .catch(() => undefined)
  .then(() => port.postMessage({ type: 'ready' } satisfies ReplyMessage))

port.on('message', async (job: JobMessage) => {
  await ready
  let reply: ReplyMessage
  try {
    const options = job.maxPages === undefined ? {} : { maxPages: job.maxPages }
    reply = { type: 'done', id: job.id, ok: true, result: await extractOwned(new Uint8Array(job.data), options) }
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    reply = {
      type: 'done',
      id: job.id,
      ok: false,
      error: { name: e.name, message: e.message, ...(err instanceof PdfRejectedError ? { code: err.code } : {}) },
    }
  }
  port.postMessage(reply)
})

/**
 * Child-process entry of the extraction pool: runs the extractor, one job at a time, under the heap
 * limit the pool started it with. Loaded as .ts through tsx in development and tests, as .js from
 * dist/ in production. pdfjs lives only here: it replaces JSON.stringify/parse process-wide.
 *
 * pdfjs inflates through DecompressionStream (node:zlib), its default. The worker threads before
 * this had to take that away (a thread terminated between a zlib handle's creation and its init
 * aborted the whole process); a child is killed whole and its death cannot reach the gateway.
 */
import { PdfRejectedError } from './errors.js'
import { extractOwned } from './extract.js'
import { warmUp } from './read-pdf.js'
import type { ExtractionResult, ExtractOptions } from './types.js'

export interface JobMessage {
  id: number
  data: Uint8Array
  options: ExtractOptions
}

type Outcome = { ok: true; result: ExtractionResult } | { ok: false; error: { name: string; message: string; code?: string } }

/** rssMb: the child's resident memory after warming up or after the job, for the pool to recycle a child that grew. */
export type ReplyMessage = { type: 'ready'; rssMb: number } | ({ type: 'done'; id: number; rssMb: number } & Outcome)

const send = process.send?.bind(process)
if (!send) throw new Error('extraction-child must run as a child process with an IPC channel')
const reply = (message: ReplyMessage) => send(message)
const residentMb = () => process.memoryUsage.rss() / 1_048_576

// The gateway closed the pool or died: nothing is left to work for.
process.on('disconnect', () => process.exit(0))

// The pool sends jobs once this is done; a failed warm-up only means the first job is slower.
void warmUp()
  .catch(() => undefined)
  .then(() => reply({ type: 'ready', rssMb: residentMb() }))

process.on('message', async (job: JobMessage) => {
  let outcome: Outcome
  try {
    outcome = { ok: true, result: await extractOwned(job.data, job.options) }
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    outcome = { ok: false, error: { name: e.name, message: e.message, ...(err instanceof PdfRejectedError ? { code: err.code } : {}) } }
  }
  reply({ type: 'done', id: job.id, rssMb: residentMb(), ...outcome })
})

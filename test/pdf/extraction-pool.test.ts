import { after, test } from 'tap'
import { ExtractionPool, ExtractionPoolError, extractPartNumbers, PdfRejectedError } from '../../src/services/pdf/index.js'
import { bigOrder, buildFixtures, simplePdf } from './fixtures.js'

const copy = (pdf: Uint8Array) => Buffer.from(pdf) // the pool detaches what it transfers

const fixtures = buildFixtures()
const big = bigOrder()

// Starting a worker from TypeScript source costs seconds, so most tests share this one.
const shared = new ExtractionPool({ size: 2 })
after(() => shared.close())

// The workers inflate with pdfjs' own code (no zlib, see extraction-worker.ts); a direct call here
// uses Node's: the results must not differ.
test('the pool extracts the same result as a direct call', async (t) => {
  const pool = shared
  const all = [...(await fixtures), await big]
  const pooled = await Promise.all(all.map((f) => pool.extract(copy(f.pdf))))
  for (const [i, f] of all.entries()) t.same(pooled[i], await extractPartNumbers(f.pdf), f.name)
})

test('the buffer is transferred when it owns its memory, copied otherwise', async (t) => {
  const pool = shared
  const pdf = await simplePdf(1)
  const owned = new Uint8Array(pdf) // a fresh ArrayBuffer of exactly this size
  await pool.extract(owned)
  t.equal(owned.byteLength, 0, 'detached after transfer')
  const slice = Buffer.concat([Buffer.alloc(16), pdf]).subarray(16)
  const result = await pool.extract(slice)
  t.equal(slice.byteLength, pdf.byteLength, 'a slice is copied, not detached')
  t.same(result.part_numbers.map((p) => p.partnumber), ['LM358N'])
  const kept = new Uint8Array(pdf)
  await pool.extract(kept, { transfer: false })
  t.equal(kept.byteLength, pdf.byteLength, 'transfer: false keeps the caller\'s buffer')
})

test('rejections come back typed', async (t) => {
  const pool = shared
  await t.rejects(pool.extract(Buffer.from('hello')), PdfRejectedError)
  await t.rejects(pool.extract(Buffer.from('hello')), { code: 'not_pdf', statusCode: 415 })
  await t.rejects(pool.extract(new Uint8Array(0)), { code: 'empty' })
  await t.rejects(pool.extract(await simplePdf(3), { maxPages: 2 }), { code: 'too_many_pages' })
  await t.rejects(pool.extract(await simplePdf(1, { userPassword: 'x' })), { code: 'encrypted' })
})

test('the event loop keeps ticking while a big extraction runs in the pool', async (t) => {
  const pool = shared
  await pool.ready()
  const { pdf } = await big
  await pool.extract(copy(pdf)) // warm the worker's JIT, as a long-running server would be

  const lag = async (run: () => Promise<unknown>) => {
    let maxLag = 0
    let last = performance.now()
    const timer = setInterval(() => {
      const now = performance.now()
      maxLag = Math.max(maxLag, now - last - 5)
      last = now
    }, 5)
    const start = performance.now()
    await run()
    const elapsed = performance.now() - start
    clearInterval(timer)
    return { maxLag, elapsed }
  }
  const pooled = await lag(() => pool.extract(copy(pdf)))
  const direct = await lag(() => extractPartNumbers(pdf))
  t.comment(`pool: extraction ${pooled.elapsed.toFixed(0)} ms, max timer lag ${pooled.maxLag.toFixed(1)} ms`)
  t.comment(`same thread, for contrast: extraction ${direct.elapsed.toFixed(0)} ms, max timer lag ${direct.maxLag.toFixed(1)} ms`)
  // Relative, not absolute: on a loaded machine everything slows down, but through the pool the
  // main thread is never held for a large share of the extraction.
  t.ok(pooled.maxLag < pooled.elapsed / 4, 'max lag is small next to the extraction time')
})

test('a job over its time limit fails with timeout and its worker is replaced', async (t) => {
  const pool = shared
  await pool.ready()
  const before = pool.stats().threadIds
  const { pdf } = await big
  await t.rejects(pool.extract(copy(pdf), { timeoutMs: 1 }), { code: 'timeout' })
  const now = pool.stats().threadIds
  t.equal(now.length, 2, 'still two workers')
  t.equal(now.filter((id) => !before.includes(id)).length, 1, 'a new thread took the place of the stuck one')
  const result = await pool.extract(await simplePdf(1))
  t.same(result.part_numbers.map((p) => p.partnumber), ['LM358N'], 'the replacement works')
})

test('the queue is bounded; a pool-wide page limit applies', async (t) => {
  const pool = new ExtractionPool({ size: 1, maxQueue: 1, maxPages: 1 })
  t.teardown(() => pool.close())
  const running = pool.extract(await simplePdf(2))
  const queued = pool.extract(await simplePdf(1))
  await t.rejects(pool.extract(await simplePdf(1)), { code: 'queue_full', statusCode: 503 })
  t.match(pool.stats(), { busy: 1, queued: 1 })
  await t.rejects(running, { code: 'too_many_pages' }, 'maxPages from the pool options')
  t.same((await queued).part_numbers.map((p) => p.partnumber), ['LM358N'])
})

test('close() fails pending jobs, ends the workers and refuses new jobs', async (t) => {
  const resourcesBefore = process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length
  const pool = new ExtractionPool({ size: 2 })
  await pool.ready()
  t.equal(pool.stats().workers, 2)
  const { pdf } = await big
  // one running on each worker, one queued
  const pending = [pool.extract(copy(pdf)), pool.extract(copy(pdf)), pool.extract(copy(pdf))].map((job) =>
    job.then(
      () => null,
      (err: unknown) => err,
    ),
  )
  await pool.close()
  for (const outcome of await Promise.all(pending)) {
    t.ok(outcome instanceof ExtractionPoolError, 'pending job failed')
    t.match(outcome, { code: 'closed' })
  }
  t.same(pool.stats(), { workers: 0, ready: 0, busy: 0, queued: 0, threadIds: [] })
  const resourcesAfter = process.getActiveResourcesInfo().filter((r) => r === 'MessagePort').length
  t.ok(resourcesAfter <= resourcesBefore, 'no worker ports left open')
  await t.rejects(pool.extract(await simplePdf(1)), { code: 'closed' })
  await pool.close() // idempotent
})

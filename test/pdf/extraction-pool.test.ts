import { after, test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { ExtractionPool, ExtractionPoolError, extractPartNumbers, PdfRejectedError } from '../../src/services/pdf/index.js'
import { residentMb } from '../../src/services/resident-memory.js'
import { bigOrder, buildFixtures, simplePdf } from './fixtures.js'
import { onePage, repeatedDeflate, streamObject } from './hostile-pdfs.js'

const fixtures = buildFixtures()
const big = bigOrder()
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
/** Whether the process has exited within 10 s (a killed one is reaped a moment later). */
async function exits(pid: number): Promise<boolean> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    if (!alive(pid)) return true
  }
  return false
}
const partNumbers = async (pending: Promise<{ part_numbers: Array<{ partnumber: string }> }>) => (await pending).part_numbers.map((p) => p.partnumber)

// Starting a child costs a second or more, so most tests share this pool.
const shared = new ExtractionPool({ size: 2 })
after(() => shared.close())

test('the pool extracts the same result as a direct call', async (t) => {
  const all = [...(await fixtures), await big]
  const pooled = await Promise.all(all.map((f) => shared.extract(f.pdf)))
  for (const [i, f] of all.entries()) t.same(pooled[i], await extractPartNumbers(f.pdf), f.name)
})

test('the caller keeps its bytes: they are copied to the child, slices included', async (t) => {
  const pdf = await simplePdf(1)
  const owned = new Uint8Array(pdf) // a fresh ArrayBuffer of exactly this size
  t.same(await partNumbers(shared.extract(owned)), ['LM358N'])
  t.equal(owned.byteLength, pdf.byteLength, 'a whole buffer is left as it was')
  const slice = Buffer.concat([Buffer.alloc(16), pdf]).subarray(16)
  t.same(await partNumbers(shared.extract(slice)), ['LM358N'], 'a slice sends its own bytes only')
  t.ok(slice.equals(pdf), 'and is left as it was')
})

test('rejections come back typed', async (t) => {
  await t.rejects(shared.extract(Buffer.from('hello')), PdfRejectedError)
  await t.rejects(shared.extract(Buffer.from('hello')), { code: 'not_pdf', statusCode: 415 })
  await t.rejects(shared.extract(new Uint8Array(0)), { code: 'empty' })
  await t.rejects(shared.extract(await simplePdf(3), { maxPages: 2 }), { code: 'too_many_pages' })
  await t.rejects(shared.extract(await simplePdf(1, { userPassword: 'x' })), { code: 'encrypted' })
})

// One child with small budgets and a queue of one.
const small = new ExtractionPool({ size: 1, maxQueue: 1, maxPages: 2, maxTextItems: 20, maxTextOperators: 100, maxDecompressedBytes: 1_048_576 })
after(() => small.close())

test('pool-wide budgets reach the children; each refusal names its budget', async (t) => {
  const pool = small
  // 50 lines at different heights: 50 operators, 50 text runs.
  const lines = (n: number) => onePage(streamObject('', Buffer.from(Array.from({ length: n }, (_, i) => `BT /F1 9 Tf 10 ${780 - 12 * (i % 60)} Td (PN: LM${i}N) Tj ET`).join('\n'))))
  const spaces = onePage(streamObject('/Filter /FlateDecode', repeatedDeflate(Buffer.alloc(1_048_576, ' '), 2)))
  const refusals = [
    [await simplePdf(3), 'too_many_pages', 413, /3 pages; at most 2/],
    [lines(50), 'too_complex', 422, /more than 20 text items; at most 20/],
    [lines(200), 'too_complex', 422, /more than 100 text operators; at most 100/],
    [spaces, 'too_large_decompressed', 413, /unpacks to more than 1 MB; at most 1 MB/],
  ] as const
  for (const [pdf, code, statusCode, message] of refusals) {
    await t.rejects(pool.extract(pdf), { name: 'PdfRejectedError', code, statusCode, message }, `${code}: ${message}`)
  }
  t.same(await partNumbers(pool.extract(lines(20))), Array.from({ length: 20 }, (_, i) => `LM${i}N`), 'within every budget: read')
})

test('the event loop keeps ticking while a big extraction runs in the pool', async (t) => {
  await shared.ready()
  const { pdf } = await big
  await shared.extract(pdf) // warm the child's JIT, as a long-running server would be

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
  const pooled = await lag(() => shared.extract(pdf))
  const direct = await lag(() => extractPartNumbers(pdf))
  t.comment(`pool: extraction ${pooled.elapsed.toFixed(0)} ms, max timer lag ${pooled.maxLag.toFixed(1)} ms`)
  t.comment(`same thread, for contrast: extraction ${direct.elapsed.toFixed(0)} ms, max timer lag ${direct.maxLag.toFixed(1)} ms`)
  // Relative, not absolute: on a loaded machine everything slows down, but through the pool the
  // main thread is never held for a large share of the extraction.
  t.ok(pooled.maxLag < pooled.elapsed / 4, 'max lag is small next to the extraction time')
})

test('a document over the time budget is refused as too complex and its child replaced', async (t) => {
  await shared.ready()
  const before = shared.stats().pids
  const { pdf } = await big
  await t.rejects(shared.extract(pdf, { timeoutMs: 1 }), { code: 'too_complex', statusCode: 422, message: /longer than 0.001 s/ })
  const now = shared.stats().pids
  t.equal(now.length, 2, 'still two children')
  t.equal(now.filter((pid) => !before.includes(pid)).length, 1, 'a new process took the place of the busy one')
  t.same(await partNumbers(shared.extract(await simplePdf(1))), ['LM358N'], 'the pool keeps serving')
})

test('a child that dies mid-job fails that job only, with worker_failed, and is replaced', async (t) => {
  await shared.ready()
  const { pdf } = await big
  const victim = shared.stats().pids[0]!
  const pending = shared.extract(pdf) // handed to an idle child at once
  process.kill(victim, 'SIGKILL')
  // Killed while the bytes are on their way, or while it reads them: either way the child is gone.
  await t.rejects(pending, { name: 'ExtractionPoolError', code: 'worker_failed', message: /extraction process/ })
  t.notOk(shared.stats().pids.includes(victim), 'the dead child is gone from the pool')
  t.same(await partNumbers(shared.extract(await simplePdf(1))), ['LM358N'], 'the pool keeps serving')
})

test('a bomb the pre-scan does not count is stopped by the memory budget', async (t) => {
  // RunLengthDecode is not measured before reading: 8 MB of runs unpack to 512 MiB of spaces.
  const runs = Buffer.alloc(512 * 8192 * 2 + 1, Buffer.from([0x81, 0x20])) // each pair: 128 spaces
  runs[runs.length - 1] = 0x80 // end of data
  const pool = new ExtractionPool({ size: 1, maxMemoryMb: 300 })
  t.teardown(() => pool.close())
  await pool.ready()
  const [child] = pool.stats().pids
  await t.rejects(pool.extract(onePage(streamObject('/Filter /RunLengthDecode', runs))), {
    code: 'too_complex', statusCode: 422, message: 'The PDF needs more than 300 MB of memory to read; at most 300 MB are allowed.',
  })
  t.ok(await exits(child!), 'the child that grew is killed')
  t.same(await partNumbers(pool.extract(await simplePdf(1))), ['LM358N'], 'a fresh child serves the next document')
})

test('a child that grew past the recycle threshold is replaced after its job', async (t) => {
  const pool = new ExtractionPool({ size: 1, recycleGrowthMb: 1 })
  t.teardown(() => pool.close())
  await pool.ready()
  const [first] = pool.stats().pids
  const { pdf, expected } = await big
  t.equal((await pool.extract(pdf)).part_numbers.length, expected.length, 'the job itself succeeds')
  const [second] = pool.stats().pids
  t.not(second, first, 'then a fresh child takes the place of the grown one')
  await pool.ready()
  t.same(await partNumbers(pool.extract(await simplePdf(1))), ['LM358N'], 'and serves the next document')
})

test('a child that stayed under the recycle threshold keeps serving', async (t) => {
  // The default threshold (256 MB): even a fresh child's first jobs grow it by a few MB (code
  // compiled, heap not yet collected), so a threshold of 1 MB would recycle it too.
  const pool = new ExtractionPool({ size: 1 })
  t.teardown(() => pool.close())
  await pool.ready()
  const [child] = pool.stats().pids
  t.same(await partNumbers(pool.extract(await simplePdf(1))), ['LM358N'])
  t.same(await partNumbers(pool.extract(await simplePdf(2))), ['LM358N'])
  t.equal(pool.stats().pids[0], child, 'small documents leave their child in place')
  t.ok((await residentMb(child!)) !== undefined, 'and that child is running')
})

test('the queue is bounded', async (t) => {
  const pool = small
  await pool.ready()
  const running = pool.extract(await simplePdf(3))
  const queued = pool.extract(await simplePdf(1))
  await t.rejects(pool.extract(await simplePdf(1)), { code: 'queue_full', statusCode: 503 })
  t.match(pool.stats(), { busy: 1, queued: 1 })
  await t.rejects(running, { code: 'too_many_pages' })
  t.same(await partNumbers(queued), ['LM358N'], 'the queued job runs next')
})

test('close() fails pending jobs, kills the children and refuses new jobs', async (t) => {
  const pool = new ExtractionPool({ size: 2 })
  await pool.ready()
  const children = pool.stats().pids
  t.equal(children.length, 2)
  const { pdf } = await big
  // one running on each child, one queued
  const pending = [pool.extract(pdf), pool.extract(pdf), pool.extract(pdf)].map((job) =>
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
  t.same(pool.stats(), { workers: 0, ready: 0, busy: 0, queued: 0, pids: [] })
  t.notOk(children.some(alive), 'the children have exited when close() resolves')
  await t.rejects(pool.extract(await simplePdf(1)), { code: 'closed' })
  await pool.close() // idempotent
})

test('children that keep dying at startup stop being respawned', async (t) => {
  // A 1 MB heap: V8 gives up before the child has loaded anything, as a broken install would.
  const pool = new ExtractionPool({ size: 1, maxMemoryMb: 1 })
  t.teardown(() => pool.close())
  await t.rejects(pool.extract(await simplePdf(1)), { code: 'worker_failed', message: 'The extraction processes fail to start.' })
  t.equal(pool.stats().workers, 0, 'no child left, none starting')
  await t.rejects(pool.extract(await simplePdf(1)), { code: 'worker_failed' }, 'later jobs are refused at once')
})

test('an idle pool does not keep the process alive', async (t) => {
  // A script that extracts once and never closes its pool must still end by itself.
  const script = `
    import { ExtractionPool } from './src/services/pdf/extraction-pool.ts'
    import { onePage, streamObject } from './test/pdf/hostile-pdfs.ts'
    const pdf = onePage(streamObject('', Buffer.from('BT /F1 9 Tf 10 50 Td (PN: LM358N) Tj ET')))
    const result = await new ExtractionPool({ size: 1 }).extract(pdf)
    console.log(result.part_numbers[0].partnumber)
  `
  const root = fileURLToPath(new URL('../../', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
  const [code, signal] = await once(child, 'exit')
  clearTimeout(timer)
  t.equal(output.trim(), 'LM358N', 'the script extracted')
  t.same([code, signal], [0, null], 'and exited by itself')
})

/**
 * PDF part-number extraction benchmark: the 1,000-line, 30-page order from the test fixtures,
 * extracted N times through the extraction pool (child processes) while a 1 ms timer in the main
 * thread records how late it fires (event-loop lag). For contrast, a few extractions on the main
 * thread are measured too.
 *
 *   npx tsx bench/pdf-extraction.ts [runs=20]
 *
 * Prints a table and one JSON line, and writes the JSON to bench/results/pdf-extraction.json.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus } from 'node:os'
import { ExtractionPool, extractPartNumbers } from '../src/services/pdf/index.js'
import { bigOrder } from '../test/pdf/fixtures.js'

const runs = Number(process.argv[2] ?? 20)
const directRuns = 5

function percentile(values: number[], p: number): number {
  if (!values.length) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}
const round = (n: number) => Math.round(n * 10) / 10

/** Run `work` while a 1 ms interval timer records how late each tick is. */
async function withLagProbe<T>(work: () => Promise<T>): Promise<{ value: T; lags: number[] }> {
  const lags: number[] = []
  let expected = performance.now() + 1
  const timer = setInterval(() => {
    const now = performance.now()
    lags.push(Math.max(0, now - expected))
    expected = now + 1
  }, 1)
  try {
    return { value: await work(), lags }
  } finally {
    clearInterval(timer)
  }
}

const fixture = await bigOrder()
const pdf = fixture.pdf
const pool = new ExtractionPool() // default size for this machine
const poolSize = pool.stats().workers
await pool.ready()
for (let i = 0; i < 2; i++) await pool.extract(Buffer.from(pdf)) // JIT warm-up, as in a long-running server

const poolTimes: number[] = []
const poolRun = await withLagProbe(async () => {
  let parts = 0
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    const result = await pool.extract(Buffer.from(pdf))
    poolTimes.push(performance.now() - start)
    parts = result.part_numbers.length
  }
  return parts
})
await pool.close()

await extractPartNumbers(pdf) // load pdfjs on this thread first, like the pool's warm-up
const directTimes: number[] = []
const directRun = await withLagProbe(async () => {
  for (let i = 0; i < directRuns; i++) {
    const start = performance.now()
    await extractPartNumbers(pdf)
    directTimes.push(performance.now() - start)
  }
})

const summary = {
  benchmark: 'pdf-extraction',
  date: new Date().toISOString(),
  node: process.version,
  cores: availableParallelism(),
  cpu: cpus()[0]?.model ?? 'unknown',
  document: { pages: 30, item_lines: 1000, bytes: pdf.byteLength, part_numbers: poolRun.value },
  pool: {
    size: poolSize,
    runs,
    extraction_ms: { p50: round(percentile(poolTimes, 50)), max: round(Math.max(...poolTimes)) },
    main_thread_timer_lag_ms: {
      p50: round(percentile(poolRun.lags, 50)),
      p99: round(percentile(poolRun.lags, 99)),
      max: round(Math.max(...poolRun.lags)),
      ticks: poolRun.lags.length,
    },
  },
  same_thread_for_contrast: {
    runs: directRuns,
    extraction_ms: { p50: round(percentile(directTimes, 50)), max: round(Math.max(...directTimes)) },
    main_thread_timer_lag_ms: {
      p50: round(percentile(directRun.lags, 50)),
      p99: round(percentile(directRun.lags, 99)),
      max: round(Math.max(...directRun.lags)),
      ticks: directRun.lags.length,
    },
  },
}
const rows: Array<[string, string, string, string, string, string]> = [
  ['mode', 'runs', 'extract p50 ms', 'extract max ms', 'timer lag p50/p99/max ms', 'ticks'],
  [
    `pool (${summary.pool.size} process${summary.pool.size === 1 ? '' : 'es'})`,
    String(runs),
    String(summary.pool.extraction_ms.p50),
    String(summary.pool.extraction_ms.max),
    `${summary.pool.main_thread_timer_lag_ms.p50} / ${summary.pool.main_thread_timer_lag_ms.p99} / ${summary.pool.main_thread_timer_lag_ms.max}`,
    String(summary.pool.main_thread_timer_lag_ms.ticks),
  ],
  [
    'same thread',
    String(directRuns),
    String(summary.same_thread_for_contrast.extraction_ms.p50),
    String(summary.same_thread_for_contrast.extraction_ms.max),
    `${summary.same_thread_for_contrast.main_thread_timer_lag_ms.p50} / ${summary.same_thread_for_contrast.main_thread_timer_lag_ms.p99} / ${summary.same_thread_for_contrast.main_thread_timer_lag_ms.max}`,
    String(summary.same_thread_for_contrast.main_thread_timer_lag_ms.ticks),
  ],
]
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
console.log(`PDF extraction: ${fixture.about}, ${poolRun.value} distinct part numbers; Node ${process.version}, ${summary.cores} cores`)
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '))
console.log(JSON.stringify(summary))

const dir = new URL('./results/', import.meta.url)
await mkdir(dir, { recursive: true })
await writeFile(new URL('pdf-extraction.json', dir), `${JSON.stringify(summary, null, 2)}\n`)

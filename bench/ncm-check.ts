/**
 * NCM check benchmark (issue 15, target: the check adds < 1 ms per result): a batch of 10,000
 * results whose codes are drawn from `distinct` codes, checked the way the gateway's readers check
 * them (checkNcms: each distinct code once, then reused for NCM_CHECK_TTL_MS), against a fresh
 * migrated database (embedded PostgreSQL) with the official table shipped in data/ncm/ loaded.
 *
 *   npx tsx bench/ncm-check.ts [results=10000] [distinct=300]
 *
 * Prints a table and one JSON line, and writes the JSON to bench/results/ncm-check.json.
 * Three figures: `cold` (nothing cached: every distinct code looked up), `warm` (all cached: a
 * re-read within the TTL, as an events stream does), and `single` (one result's check, uncached:
 * what a single job's write waits for before finish_job).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { startDatabasePool } from '../test/helpers/stack.js'
import { checkNcms, forgetNcmChecks } from '../src/services/ncm/ncm-checks.js'
import { checkNcm } from '../src/services/ncm/ncm-check.js'
import { ensureNcmTable } from '../src/services/ncm/ncm-snapshot.js'

const results = Number(process.argv[2] ?? 10_000)
const distinct = Number(process.argv[3] ?? 300)
const round = (n: number) => Math.round(n * 1000) / 1000

const { pool, close } = await startDatabasePool(10)
try {
  await ensureNcmTable(pool)
  // Items of chapters 84 and 85, as the gateway's results mostly are, one in ten a code the table does not know.
  const { rows } = await pool.query(
    `SELECT code FROM ncm_entries WHERE length(code) = 8 AND code LIKE ANY('{84%,85%}') ORDER BY md5(code) LIMIT $1`, [distinct])
  const codes = rows.map((r, i) => (i % 10 === 9 ? `9${r.code.slice(1)}` : r.code) as string)
  const batch = Array.from({ length: results }, (_, i) => codes[(i * 7919) % distinct]!)
  const version = (await checkNcm(pool, codes[0]!)).table_version

  const runs = 5
  const cold: number[] = []
  const warm: number[] = []
  for (let i = 0; i < runs; i++) {
    forgetNcmChecks(pool)
    let start = performance.now()
    await checkNcms(pool, batch)
    cold.push(performance.now() - start)
    start = performance.now()
    await checkNcms(pool, batch)
    warm.push(performance.now() - start)
  }
  const singles: number[] = []
  for (const code of codes.slice(0, 200)) {
    const start = performance.now()
    await checkNcm(pool, code)
    singles.push(performance.now() - start)
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!
  const summary = {
    results, distinct, table_version: version,
    cold_batch_ms: round(median(cold)), cold_per_result_us: round(median(cold) / results * 1000),
    warm_batch_ms: round(median(warm)), warm_per_result_us: round(median(warm) / results * 1000),
    single_check_ms: round(median(singles)),
    target_per_result_ms: 1,
    node: process.version,
  }
  console.log(`NCM check: ${results} results, ${distinct} distinct codes, table ${version}`)
  console.log(`  cold (every distinct code looked up)  ${summary.cold_batch_ms} ms per batch, ${summary.cold_per_result_us} µs per result`)
  console.log(`  warm (within the TTL)                 ${summary.warm_batch_ms} ms per batch, ${summary.warm_per_result_us} µs per result`)
  console.log(`  one result, uncached (single job)     ${summary.single_check_ms} ms   (target < 1 ms per result)`)
  console.log(JSON.stringify(summary))
  await mkdir('bench/results', { recursive: true })
  await writeFile('bench/results/ncm-check.json', `${JSON.stringify(summary, null, 2)}\n`)
} finally {
  await close()
}

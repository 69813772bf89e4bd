/**
 * NCM table benchmark (issue 15): import of the full official table, checkNcm per call, and the
 * description search, against a real PostgreSQL (a throw-away cluster from npm, as the tests use).
 *
 *   npx tsx bench/ncm.ts [imports=3] [checks=5000] [searchRounds=30]
 *
 * Targets (reported, not enforced): import < 5 s, check < 1 ms per call, search p99 < 50 ms.
 * Prints a table and one JSON line, and writes the JSON to bench/results/ncm.json.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { execSync } from 'node:child_process'
import { startDatabasePool } from '../test/helpers/stack.js'
import { checkNcm } from '../src/services/ncm/ncm-check.js'
import { importNcmTable, readNcmSource } from '../src/services/ncm/ncm-import.js'
import { NCM_SNAPSHOT } from '../src/services/ncm/ncm-snapshot.js'
import { searchNcm } from '../src/services/ncm/ncm-table.js'
import { parseSiscomexJson } from '../src/services/ncm/siscomex-json.js'

const imports = Number(process.argv[2] ?? 3)
const checks = Number(process.argv[3] ?? 5000)
const searchRounds = Number(process.argv[4] ?? 30)
// What a reviewer of electronic parts types, with and without accents, one word or several.
const QUERIES = ['transistor', 'circuitos integrados', 'CIRCUÍTOS INTEGRADOS', 'capacitor', 'condensadores eletricos', 'resistencias',
  'diodos', 'memorias', 'placa de circuito impresso', 'conectores', 'cabos', 'fios', 'motor eletrico', 'baterias de litio', 'led',
  'microprocessador', 'fonte de alimentação', 'indutores', 'transformadores', 'semicondutores', 'cristais piezoelétricos', 'outros', 'partes']

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits

const { pool, close } = await startDatabasePool(4)
try {
  // 1. Import: read + gunzip + parse + validate, then the transaction; the first into an empty table, the others replacing it.
  const importRuns: Array<{ read_parse_ms: number; db_ms: number; total_ms: number }> = []
  for (let i = 0; i < imports; i++) {
    const started = performance.now()
    const read = await readNcmSource(NCM_SNAPSHOT)
    const file = parseSiscomexJson(read.bytes)
    const parsed = performance.now()
    await importNcmTable(pool, file, read)
    const done = performance.now()
    importRuns.push({ read_parse_ms: round(parsed - started, 1), db_ms: round(done - parsed, 1), total_ms: round(done - started, 1) })
  }
  await pool.query('VACUUM ANALYZE ncm_entries')

  // 2. checkNcm, one call at a time, over the table's own codes (items, headings) and unknown ones.
  const { rows } = await pool.query('SELECT code FROM ncm_entries ORDER BY random() LIMIT 2000')
  const codes = rows.map((r) => r.code as string).concat(['85423199', '99999999', '8542.31.90'])
  for (let i = 0; i < 300; i++) await checkNcm(pool, codes[i % codes.length]!)
  const checkTimes: number[] = []
  const checkStarted = performance.now()
  for (let i = 0; i < checks; i++) {
    const t = performance.now()
    await checkNcm(pool, codes[i % codes.length]!)
    checkTimes.push(performance.now() - t)
  }
  const checkWall = performance.now() - checkStarted
  // The same with 4 in flight (a batch checking its items concurrently on a pool of 4).
  const concurrentStarted = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: 4 }, async () => { while (next < checks) await checkNcm(pool, codes[next++ % codes.length]!) }))
  const concurrentWall = performance.now() - concurrentStarted

  // 3. Search: every query, first page of 20, then a deep page (offset 200), searchRounds times each.
  for (const q of QUERIES) await searchNcm(pool, q, 20, 0)
  const searchTimes: number[] = []
  const deepTimes: number[] = []
  const hits: Record<string, number> = {}
  for (let r = 0; r < searchRounds; r++) {
    for (const q of QUERIES) {
      let t = performance.now()
      const result = await searchNcm(pool, q, 20, 0)
      searchTimes.push(performance.now() - t)
      hits[q] = result.total
      t = performance.now()
      await searchNcm(pool, q, 20, 200)
      deepTimes.push(performance.now() - t)
    }
  }

  const revision = (() => { try { return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim() } catch { return null } })()
  const summary = {
    date: new Date().toISOString(), revision, node: process.version, cores: availableParallelism(), cpu: cpus()[0]?.model, load_average: loadavg().map((l) => round(l)),
    import: { runs: importRuns, worst_total_ms: Math.max(...importRuns.map((r) => r.total_ms)), target_ms: 5000 },
    check: { calls: checks, mean_ms: round(checkWall / checks, 3), p50_ms: round(percentile(checkTimes, 50), 3), p99_ms: round(percentile(checkTimes, 99), 3), max_ms: round(Math.max(...checkTimes), 2), four_in_flight_per_second: Math.round(checks / (concurrentWall / 1000)), target_ms: 1 },
    search: { queries: QUERIES.length, rounds: searchRounds, first_page_p50_ms: round(percentile(searchTimes, 50)), first_page_p99_ms: round(percentile(searchTimes, 99)), deep_page_p50_ms: round(percentile(deepTimes, 50)), deep_page_p99_ms: round(percentile(deepTimes, 99)), max_ms: round(Math.max(...searchTimes, ...deepTimes)), target_p99_ms: 50, matches: hits },
  }
  console.log('\nNCM table benchmark')
  console.log(`machine: ${summary.cores} cores, ${summary.cpu}, Node ${summary.node}, load ${summary.load_average.join(' ')}`)
  console.log('| what | figure | target |\n|---|---|---|')
  for (const [i, r] of importRuns.entries()) console.log(`| import ${i === 0 ? '(empty table)' : '(replacing)'} | ${r.total_ms} ms (read+parse ${r.read_parse_ms}, database ${r.db_ms}) | < 5000 ms |`)
  console.log(`| checkNcm, one at a time | mean ${summary.check.mean_ms} ms, p50 ${summary.check.p50_ms}, p99 ${summary.check.p99_ms}, max ${summary.check.max_ms} | < 1 ms |`)
  console.log(`| checkNcm, 4 in flight | ${summary.check.four_in_flight_per_second} checks/s | - |`)
  console.log(`| search, first page of 20 | p50 ${summary.search.first_page_p50_ms} ms, p99 ${summary.search.first_page_p99_ms} ms | p99 < 50 ms |`)
  console.log(`| search, page at offset 200 | p50 ${summary.search.deep_page_p50_ms} ms, p99 ${summary.search.deep_page_p99_ms} ms | p99 < 50 ms |`)
  console.log(JSON.stringify(summary))
  await mkdir(new URL('./results/', import.meta.url), { recursive: true })
  await writeFile(new URL('./results/ncm.json', import.meta.url), JSON.stringify(summary, null, 2) + '\n')
} finally {
  await close()
}

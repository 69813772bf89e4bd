import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { execFileSync } from 'node:child_process'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { ROOT } from './procs.js'

// Figures, tables and result files, in the style of bench/pdf-extraction.ts.

/** Nearest-rank percentile of values sorted ascending. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!sorted.length) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export interface Distribution {
  count: number
  p50: number
  p99: number
  p999: number
  max: number
  mean: number
}

export function distribution(values: ArrayLike<number>): Distribution {
  const sorted = Float64Array.from(values as ArrayLike<number>).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    count: sorted.length,
    p50: round(percentile(sorted, 50), 3),
    p99: round(percentile(sorted, 99), 3),
    p999: round(percentile(sorted, 99.9), 3),
    max: round(sorted.length ? sorted[sorted.length - 1]! : Number.NaN, 3),
    mean: round(sorted.length ? sum / sorted.length : Number.NaN, 3),
  }
}

export function round(n: number, digits = 1): number {
  if (!Number.isFinite(n)) return n
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** The commit measured, with "+changes" when the working tree differs from it (bench/results aside: a run writes them). */
function revision(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim()
    const status = ['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)bench/results']
    const dirty = execFileSync('git', status, { encoding: 'utf8', cwd: ROOT }).trim() !== ''
    return dirty ? `${commit}+changes` : commit
  } catch {
    return 'unknown'
  }
}

export function machine() {
  const [one, five, fifteen] = loadavg()
  return {
    date: new Date().toISOString(),
    revision: revision(),
    node: process.version,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memory_gb: round(totalmem() / 1024 ** 3, 1),
    loadavg: [round(one!, 2), round(five!, 2), round(fifteen!, 2)],
  }
}

/** A target a figure is checked against. `correctness` checks (nothing lost, no errors) fail the run; timing ones are reported. */
export interface Check {
  name: string
  target: string
  value: string
  pass: boolean
  correctness?: boolean
}

export function check(name: string, target: string, value: number | string, pass: boolean, correctness = false): Check {
  return { name, target, value: typeof value === 'number' ? String(round(value, 3)) : value, pass, correctness }
}

export function printTable(title: string, rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  console.log(`\n${title}`)
  rows.forEach((row, index) => {
    console.log(row.map((cell, i) => (cell ?? '').padEnd(widths[i]!)).join('  ').trimEnd())
    if (index === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '))
  })
}

/** Our figure against the reference's, and the quotient. */
export function versus(metric: string, ours: number, reference: number | undefined, unit: string): string[] {
  const ratio = reference ? round(ours / reference, 2) : undefined
  return [metric, `${round(ours, 3)} ${unit}`, reference === undefined ? '-' : `${round(reference, 3)} ${unit}`, ratio === undefined ? '-' : String(ratio)]
}

export function printChecks(title: string, checks: Check[], smoke: boolean): void {
  printTable(title, [
    ['target', 'wanted', 'measured', smoke ? 'status (smoke: scale too small to judge timing)' : 'status'],
    ...checks.map((c) => [c.name, c.target, c.value, c.pass ? 'ok' : c.correctness || !smoke ? 'MISS' : 'miss (smoke)']),
  ])
}

const RESULTS = new URL('../results/', import.meta.url)

/** Writes bench/results/<name>.json (bench/results/smoke/ for --smoke runs). */
export async function writeResult(name: string, summary: object, smoke: boolean): Promise<string> {
  const dir = smoke ? new URL('smoke/', RESULTS) : RESULTS
  await mkdir(dir, { recursive: true })
  const file = new URL(`${name}.json`, dir)
  await writeFile(file, `${JSON.stringify(summary, null, 2)}\n`)
  return file.pathname
}

export async function readResult(name: string, smoke: boolean): Promise<any> {
  const dir = smoke ? new URL('smoke/', RESULTS) : RESULTS
  return JSON.parse(await readFile(new URL(`${name}.json`, dir), 'utf8'))
}

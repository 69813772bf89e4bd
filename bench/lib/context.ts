import type { BenchStack } from './stack.js'
import type { Check } from './report.js'

export interface BenchContext {
  stack: BenchStack
  /** Small counts, a few seconds per scenario: to keep the harness from rotting, not to judge figures. */
  smoke: boolean
  /** Run the gateway under `node --cpu-prof` and summarize where its time went. */
  profile: boolean
  log(line: string): void
}

export interface ScenarioOutcome {
  /** File name under bench/results/. */
  name: string
  title: string
  /** metric | gateway | reference | gateway / reference */
  table: string[][]
  checks: Check[]
  /** Everything measured, for the JSON result. */
  figures: Record<string, unknown>
}

export type Scenario = (ctx: BenchContext) => Promise<ScenarioOutcome>

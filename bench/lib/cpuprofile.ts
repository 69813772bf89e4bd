import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { round } from './report.js'

// Reads a V8 .cpuprofile (node --cpu-prof) and sums self time per function and per origin.

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

interface CpuProfile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

export interface ProfileSummary {
  file: string
  window?: { fromNs: number; toNs: number }
  totalMs: number
  /** Time the thread was idle (waiting in epoll), in ms. */
  idleMs: number
  top: Array<{ function: string; where: string; selfMs: number; percentOfBusy: number }>
  byOrigin: Array<{ origin: string; selfMs: number; percentOfBusy: number }>
}

/** The package (or "node", "gateway", "(gc)"...) a frame belongs to. */
function origin(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)'
  if (url.startsWith('node:')) return 'node internals'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg && !url.includes('node_modules/.cache/nexa-bench/')) return pkg[1]!
  if (url.includes('/src/') || /nexa-bench\/dist[^/]*\//.test(url)) return 'gateway (src)'
  return url
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(/^.*node_modules\/\.cache\/nexa-bench\/dist[^/]*\//, 'src/').replace(/^.*node_modules\//, '').replace(/^.*\/work\/main\//, '')
}

/**
 * Self time per function. With `window` (monotonic ns, the clock of process.hrtime, which V8's
 * profile timestamps share on Linux), only the samples taken within it: the measured phase alone.
 */
export async function summarizeProfile(file: string, options: { top?: number; window?: { fromNs: number; toNs: number } } = {}): Promise<ProfileSummary> {
  const top = options.top ?? 20
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfUs = new Map<number, number>()
  const fromUs = options.window ? options.window.fromNs / 1000 : Number.NEGATIVE_INFINITY
  const toUs = options.window ? options.window.toNs / 1000 : Number.POSITIVE_INFINITY
  let at = profile.startTime
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (at >= fromUs && at <= toUs) selfUs.set(id, (selfUs.get(id) ?? 0) + delta)
  })

  const perFunction = new Map<string, { function: string; where: string; us: number }>()
  const perOrigin = new Map<string, number>()
  let idleUs = 0
  let totalUs = 0
  for (const [id, us] of selfUs) {
    const { callFrame } = byId.get(id)!
    totalUs += us
    if (callFrame.functionName === '(idle)') {
      idleUs += us
      continue
    }
    const name = callFrame.functionName || '(anonymous)'
    const where = callFrame.url ? `${shortUrl(callFrame.url)}:${callFrame.lineNumber + 1}` : ''
    const key = `${name}@${where}`
    const entry = perFunction.get(key) ?? { function: name, where, us: 0 }
    entry.us += us
    perFunction.set(key, entry)
    const o = origin(callFrame.url, name)
    perOrigin.set(o, (perOrigin.get(o) ?? 0) + us)
  }
  const busyUs = totalUs - idleUs
  const pct = (us: number) => round((us / busyUs) * 100, 1)
  return {
    file,
    window: options.window,
    totalMs: round(totalUs / 1000, 0),
    idleMs: round(idleUs / 1000, 0),
    top: [...perFunction.values()].sort((a, b) => b.us - a.us).slice(0, top)
      .map((f) => ({ function: f.function, where: f.where, selfMs: round(f.us / 1000, 0), percentOfBusy: pct(f.us) })),
    byOrigin: [...perOrigin.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)
      .map(([o, us]) => ({ origin: o, selfMs: round(us / 1000, 0), percentOfBusy: pct(us) })),
  }
}

/** The main thread's profile among those a process wrote into `dir` (CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; worker threads have their own). */
export async function profileIn(dir: string): Promise<string | undefined> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.cpuprofile')).sort()
  const main = files.find((f) => /\.0\.\d+\.cpuprofile$/.test(f)) ?? files[0]
  return main ? join(dir, main) : undefined
}

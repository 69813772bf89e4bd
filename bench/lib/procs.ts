import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { residentMb } from '../../src/services/resident-memory.js'

// Every process the benchmark starts goes through here: its soft file-descriptor limit raised to
// the hard one (each open stream is a socket), remembered so that it is stopped on every way out.

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Preloaded into every node child: exits when the benchmark process is gone, however it died. */
export const ORPHAN_GUARD = fileURLToPath(new URL('./orphan-guard.mjs', import.meta.url))

const children = new Set<ChildProcess>()

export interface SpawnOptions {
  env?: Record<string, string | undefined>
  /** Inherit stdout/stderr (default: ignore them). */
  inheritOutput?: boolean
  /** Keep an IPC channel (structured clone) to the child. */
  ipc?: boolean
}

/**
 * `command args...` with `ulimit -n` raised to the hard limit. The shell execs the command, so the
 * child's pid is the command's own (its RSS and descriptors can be read from /proc).
 */
export function spawnRaised(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const output = options.inheritOutput ? 'inherit' : 'ignore'
  const stdio: StdioOptions = options.ipc ? ['ignore', output, output, 'ipc'] : ['ignore', output, output]
  const child = spawn('/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', command, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio,
    serialization: options.ipc ? 'advanced' : undefined,
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** A node child (TypeScript through tsx unless the file is .js/.mjs). */
export function spawnNode(file: string, args: string[], options: SpawnOptions & { nodeArgs?: string[] } = {}): ChildProcess {
  const loader = /\.m?js$/.test(file) ? [] : ['--import', 'tsx']
  return spawnRaised(process.execPath, [...loader, '--import', ORPHAN_GUARD, ...(options.nodeArgs ?? []), file, ...args], options)
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
  await exited(child)
  clearTimeout(timer)
}

export function killAllChildren(): void {
  for (const child of children) child.kill('SIGKILL')
}

process.once('exit', killAllChildren)

/** Resident set size of a process, in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const mb = await residentMb(pid)
  if (mb === undefined) throw new Error(`no resident size for process ${pid}: gone, or no /proc`)
  return mb * 2 ** 20
}

/** The processes `pid` started (its direct children), from /proc. */
export async function childPids(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')
  return text.split(/\s+/).filter(Boolean).map(Number)
}

export async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length
}

/** CPU time (user + system) a process has used so far, in ms. */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of stat(5), counted from the state field (3) here.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // USER_HZ is 100 on Linux
}

/** CPU time and context switches of a process so far: `preempted` counts the times the kernel took the CPU from it (nonvoluntary switches). */
export async function procStats(pid: number): Promise<{ cpuMs: number; preempted: number; waited: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return {
    cpuMs: await cpuMs(pid),
    preempted: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1]),
    waited: Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1]),
  }
}

/** The machine's CPU time used by everything (user + nice + system + irq + softirq) and in total, in ms: busy / total over an interval is its utilisation. */
export async function machineCpuMs(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number) as number[]
  const busy = user! + nice! + system! + irq! + softirq! + steal!
  return { busy: busy * 10, total: (busy + idle! + iowait!) * 10 }
}

/** What each kind of process on the machine is, for the CPU breakdown of a phase. */
function processKind(pid: number, comm: string, cmdline: string): string {
  if (pid === process.pid) return 'bench'
  if (comm === 'postgres') return 'PostgreSQL'
  if (comm === 'redis-server') return 'Redis'
  if (comm !== 'node' && !comm.startsWith('node')) return 'other'
  if (/simulator\/main\.[jt]s/.test(cmdline)) return 'simulator'
  if (/load-worker\.ts|publisher\.ts/.test(cmdline)) return 'load'
  if (/server\.[jt]s/.test(cmdline)) return 'gateway'
  return 'other'
}

/** CPU time used so far by every process on the machine, ms, with its kind. */
async function processCpu(): Promise<Map<number, { kind: string; cpuMs: number }>> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number)
  const all = new Map<number, { kind: string; cpuMs: number }>()
  await Promise.all(
    pids.map(async (pid) => {
      try {
        const [comm, cmdline, cpu] = await Promise.all([
          readFile(`/proc/${pid}/comm`, 'utf8'),
          readFile(`/proc/${pid}/cmdline`, 'utf8'),
          cpuMs(pid),
        ])
        all.set(pid, { kind: processKind(pid, comm.trim(), cmdline.replaceAll('\0', ' ')), cpuMs: cpu })
      } catch {
        // the process ended meanwhile
      }
    }),
  )
  return all
}

/** CPU ms per kind of process between two snapshots (processes started meanwhile count from zero). */
function cpuByKind(before: Map<number, { cpuMs: number }>, after: Map<number, { kind: string; cpuMs: number }>): Record<string, number> {
  const byKind: Record<string, number> = {}
  for (const [pid, { kind, cpuMs }] of after) byKind[kind] = (byKind[kind] ?? 0) + cpuMs - (before.get(pid)?.cpuMs ?? 0)
  return Object.fromEntries(Object.entries(byKind).map(([kind, ms]) => [kind, Math.round(ms)]))
}

export async function fdHardLimit(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8')
  const match = /Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/.exec(limits)
  return match?.[2] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(match?.[2] ?? 1024)
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface Meter {
  wallMs: number
  /** CPU time the process used, ms, and as a share of one core. */
  cpuMs: number
  cpuPercent: number
  /** Times the kernel took the CPU from the process (another process ran). */
  preempted: number
  /** The whole machine's utilisation meanwhile, % of all cores (load generators included). */
  machineBusyPercent: number
  /** The CPU time all processes on the machine used meanwhile, ms (summed over the cores). */
  machineBusyMs: number
  /** Of which each kind of process: gateway, PostgreSQL, Redis, simulator, load, bench, other. */
  cpuMsByKind: Record<string, number>
}

/** Starts measuring a process; call the returned function at the end of the phase. */
export async function startMeter(pid: number): Promise<() => Promise<Meter>> {
  const [p0, m0, k0, t0] = [await procStats(pid), await machineCpuMs(), await processCpu(), performance.now()]
  return async () => {
    const [p1, m1, k1, t1] = [await procStats(pid), await machineCpuMs(), await processCpu(), performance.now()]
    const wallMs = t1 - t0
    const cpu = p1.cpuMs - p0.cpuMs
    return {
      wallMs: Math.round(wallMs),
      cpuMs: Math.round(cpu),
      cpuPercent: Math.round((cpu / wallMs) * 100),
      preempted: p1.preempted - p0.preempted,
      machineBusyPercent: Math.round(((m1.busy - m0.busy) / Math.max(1, m1.total - m0.total)) * 100),
      machineBusyMs: Math.round(m1.busy - m0.busy),
      cpuMsByKind: cpuByKind(k0, k1),
    }
  }
}

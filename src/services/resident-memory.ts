import { readFile } from 'node:fs/promises'

/** A process's resident memory in MiB, from /proc (Linux); undefined without /proc or once the process is gone. */
export async function residentMb(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]
  return kb === undefined ? undefined : Number(kb) / 1024
}

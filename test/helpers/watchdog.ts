import { spawn } from 'node:child_process'

/**
 * Stops the servers a test file started if the file's process dies without its teardown (tap kills
 * a file that passes its timeout): otherwise they outlive it and load the machine for the files
 * after it. A small shell holds the read end of a pipe from this process; its read returns once
 * this process is gone, however it ended. It then signals the pid written in each pid file that
 * still exists (a server stopped cleanly has removed its own, or the helper did) and removes `dirs`.
 */
export function stopWhenGone(targets: Array<{ pidFile: string; signal: 'QUIT' | 'KILL' }>, dirs: string[] = []): void {
  const script = [
    'read -r _',
    'while [ $# -gt 0 ]; do',
    '  case "$1" in',
    '    dir=*) sleep 2; rm -rf "${1#dir=}" ;;',
    '    *) [ -f "$2" ] && kill -s "$1" "$(head -n 1 "$2")" 2>/dev/null; shift ;;',
    '  esac',
    '  shift',
    'done',
  ].join('\n')
  const args = [...targets.flatMap((t) => [t.signal, t.pidFile]), ...dirs.map((d) => `dir=${d}`)]
  const child = spawn('/bin/sh', ['-c', script, 'watchdog', ...args], { stdio: ['pipe', 'ignore', 'ignore'], detached: true })
  child.on('error', () => {})
  child.stdin!.on('error', () => {})
  // Neither the shell nor the pipe keeps this process alive.
  child.unref()
  ;(child.stdin as unknown as { unref(): void }).unref()
}

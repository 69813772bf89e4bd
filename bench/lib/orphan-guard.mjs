// Preloaded (`node --import`) into every process the benchmark starts: when the benchmark process
// is gone (even killed with SIGKILL), this one is re-parented and ends itself with SIGTERM, so it
// shuts down gracefully and nothing is left running. Checks once a second; never keeps the process alive.
const parent = process.ppid
const timer = setInterval(() => {
  if (process.ppid !== parent) {
    clearInterval(timer)
    process.kill(process.pid, 'SIGTERM')
    setTimeout(() => process.exit(1), 10_000).unref()
  }
}, 1000)
timer.unref()

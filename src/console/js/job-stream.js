// Following one job live with EventSource: the reference client of GET /jobs/:id/events.
//
// The stream sends, in order: `snapshot` (the job as stored, items included for a batch), then
// `progress` {current, total, message} as the AI server works (for a batch: items answered of all
// items), `item` {partnumber, status, result, error} for each finished part number of a batch, and
// finally `done` or `failed`, after which the server ends the stream. A `: ping` comment every 15 s
// keeps proxies from closing a quiet stream; while the job has had no word from the AI server for
// that long, `waiting` {quiet_seconds, last_activity_at} comes with it (its agents may work for
// many minutes without a word).
//
// A job failed by the gateway's deadline (`failed` with `timed_out: true`) may still be answered
// late: its stream stays open, and a late result comes as `done`. So such a `failed` is reported
// (onFailed) without closing; `done` then ends it as usual.
//
// Reconnecting is normal: the server restarts, a proxy drops the connection, the laptop sleeps.
// Two cases:
//   - the connection dropped: EventSource reconnects by itself after the server's `retry:` hint
//     (readyState CONNECTING), sending Last-Event-ID; we only report "reconnecting".
//   - the server answered an error (401 session expired, 503 while an instance shuts down, 502
//     from a proxy): EventSource gives up for good (readyState CLOSED). We wait (backing off),
//     ask `streamUrl()` for a URL again (a place to renew the session or fetch a fresh
//     events_url, or to throw an error marked `fatal` to give up), and open a new EventSource.
// Either way the first event of the new connection is a fresh `snapshot`, so handlers must
// render state, not append to it: after a reconnect the page shows what the database holds.
//
// Usage, same origin (the session cookie authenticates the stream):
//   const follow = followJob(job.id, { onProgress: (p) => ..., onDone: (d) => ..., onState: (s) => ... })
//   follow.close()   // stop following (navigating away, another job)
// From another origin, pass the job's events_url, whose token is scoped to this job:
//   followJob(job.id, { streamUrl: async (attempt) => attempt === 0 ? job.events_url : (await getJob(job.id)).events_url, ... })

/** @typedef {'connecting' | 'live' | 'reconnecting' | 'finished' | 'closed'} StreamState */

const EVENTS = ['snapshot', 'progress', 'item', 'waiting', 'done', 'failed']
const MAX_BACKOFF_MS = 30_000

/**
 * @param {string} jobId
 * @param {{
 *   streamUrl?: (attempt: number) => string | Promise<string>,
 *   withCredentials?: boolean,
 *   onSnapshot?: (job: any) => void, onProgress?: (p: any) => void, onItem?: (item: any) => void,
 *   onWaiting?: (w: any) => void, onDone?: (data: any) => void, onFailed?: (data: any) => void,
 *   onState?: (state: StreamState, detail?: string) => void,
 * }} handlers
 */
export function followJob(jobId, handlers) {
  const streamUrl = handlers.streamUrl ?? (() => `/jobs/${encodeURIComponent(jobId)}/events`)
  /** @type {EventSource | undefined} */
  let source
  let attempt = 0 // reconnections we made ourselves, since the last successful connection
  let stopped = false
  let timer

  const setState = (state, detail) => handlers.onState?.(state, detail)

  async function connect() {
    if (stopped) return
    setState(attempt === 0 ? 'connecting' : 'reconnecting')
    let url
    try {
      url = await streamUrl(attempt)
    } catch (err) {
      // streamUrl marks an error `fatal` when retrying cannot help (signed out, job not found).
      if (err?.fatal) return stop(err.message)
      return retryLater(err instanceof Error ? err.message : String(err))
    }
    if (stopped) return
    source = new EventSource(url, { withCredentials: Boolean(handlers.withCredentials) })
    source.addEventListener('open', () => {
      attempt = 0
      setState('live')
    })
    for (const type of EVENTS) {
      source.addEventListener(type, (event) => onEvent(type, JSON.parse(event.data)))
    }
    source.addEventListener('error', () => {
      if (stopped) return
      if (source?.readyState === EventSource.CONNECTING) {
        setState('reconnecting') // the browser retries by itself
      } else {
        source?.close()
        retryLater('the server refused the stream')
      }
    })
  }

  function onEvent(type, data) {
    if (type === 'snapshot') handlers.onSnapshot?.(data)
    else if (type === 'progress') handlers.onProgress?.(data)
    else if (type === 'item') handlers.onItem?.(data)
    else if (type === 'waiting') handlers.onWaiting?.(data)
    else if (type === 'failed' && data.timed_out) {
      // Failed by the deadline: the server keeps the stream open for a late answer, and so do we.
      handlers.onFailed?.(data)
    } else {
      // done / failed: the end. Close before the server does, or EventSource would reconnect.
      finish()
      if (type === 'done') handlers.onDone?.(data)
      else handlers.onFailed?.(data)
    }
  }

  function retryLater(reason) {
    attempt += 1
    // 1 s, 2 s, 4 s ... up to 30 s, with jitter so that many pages do not come back at once.
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempt - 1)) * (0.75 + Math.random() / 2)
    setState('reconnecting', reason)
    timer = setTimeout(connect, delay)
  }

  function finish() {
    stopped = true
    clearTimeout(timer)
    source?.close()
    setState('finished')
  }

  function stop(reason) {
    if (stopped) return
    stopped = true
    clearTimeout(timer)
    source?.close()
    setState('closed', reason)
  }

  connect()
  return {
    /** Stop following; no more handler calls. */
    close: () => stop(),
  }
}

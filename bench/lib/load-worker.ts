// A load process: holds event streams, posts jobs, measures. Driven by the benchmark over IPC
// (see protocol.ts); started by load-pool.ts with its file-descriptor limit raised.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Pool } from 'undici'
import { SseConnection, nowNs } from './sse-client.js'
import type { Endpoint, EndToEndResult, LatencyReport, LoadCommand, LoadReply, OpenResult, PostJobsResult, StreamSpec } from './protocol.js'

class Samples {
  private values = new Float64Array(1024)
  length = 0
  push(value: number) {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2)
      grown.set(this.values)
      this.values = grown
    }
    this.values[this.length++] = value
  }
  take(): Float64Array {
    const out = this.values.slice(0, this.length)
    this.length = 0
    return out
  }
}

interface Stream {
  spec: StreamSpec
  conn?: SseConnection
  opened: boolean
  last: number
}

let target: Endpoint | undefined
let headers: Record<string, string> = {}
let streams: Stream[] = []
let recording = false
const latency = new Samples()
// The histogram records whole timer intervals: the delay is what exceeds the sampling interval.
const LOOP_SAMPLE_MS = 1
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS })
loopDelay.enable()
let progressEvents = 0
let outOfOrder = 0
let gaps = 0
let ended: Record<string, number> = {}

const send = (reply: LoadReply) => process.send!(reply)
const bump = (counts: Record<string, number>, key: string) => { counts[key] = (counts[key] ?? 0) + 1 }

function onProgress(stream: Stream, data: string) {
  const at = nowNs()
  const parsed = JSON.parse(data)
  // The gateway sends {job_id, current, total, message}; the reference forwards the AI message as is.
  const progress = parsed.progress ?? parsed
  const current = progress.current as number
  if (recording) {
    latency.push((at - Number(progress.message)) / 1e6)
    progressEvents++
  }
  if (current <= stream.last) outOfOrder++
  else if (current > stream.last + 1) gaps += current - stream.last - 1
  stream.last = Math.max(stream.last, current)
}

/** Opens `list` with at most `inflight` connects waiting for their first event at once (0: all at once). */
function openAll(list: Stream[], inflight: number, timeoutMs: number): Promise<OpenResult> {
  const result: OpenResult = { type: 'open', requested: list.length, opened: 0, failed: 0, errors: {}, connectMs: new Float64Array(0), elapsedMs: 0, retryHints: {} }
  const connectMs = new Samples()
  const started = nowNs()
  let next = 0
  let pending = 0
  return new Promise((resolve) => {
    if (!list.length) return resolve(result)
    const finish = () => {
      if (result.opened + result.failed < list.length) return
      result.connectMs = connectMs.take()
      result.elapsedMs = (nowNs() - started) / 1e6
      resolve(result)
    }
    const launch = () => {
      while (next < list.length && (inflight === 0 || pending < inflight)) {
        const stream = list[next++]!
        pending++
        const begin = nowNs()
        let settled = false
        const settle = (error?: string) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          pending--
          if (error) {
            result.failed++
            bump(result.errors, error)
          } else {
            result.opened++
            connectMs.push((nowNs() - begin) / 1e6)
          }
          launch()
          finish()
        }
        const timer = setTimeout(() => { settle('timeout'); stream.conn?.close() }, timeoutMs)
        stream.opened = false
        stream.conn = new SseConnection({ ...target!, path: stream.spec.path, headers }, {
          onHead(status) {
            if (status !== 200) {
              settle(`http ${status}`)
              stream.conn?.close()
            }
          },
          onRetry(ms) {
            if (!settled) bump(result.retryHints, String(ms))
          },
          onEvent(event, data) {
            if (!stream.opened) {
              stream.opened = true
              settle()
            }
            if (event === 'progress') onProgress(stream, data)
          },
          onEnd(reason) {
            if (!settled) settle(reason ?? 'ended before its first event')
            else if (stream.opened) bump(ended, reason ?? 'server ended the stream')
            stream.opened = false
          },
        })
      }
    }
    launch()
  })
}

function closeAll(): number {
  let closed = 0
  for (const stream of streams) {
    if (stream.conn) {
      stream.opened = false
      // Ended by us: not counted as a stream the server dropped.
      const conn = stream.conn
      stream.conn = undefined
      conn.close()
      closed++
    }
  }
  ended = {}
  return closed
}

function report(): LatencyReport {
  const indexes = new Int32Array(streams.length)
  const last = new Int32Array(streams.length)
  let open = 0
  streams.forEach((s, i) => {
    indexes[i] = s.spec.index
    last[i] = s.last
    if (s.opened) open++
  })
  const beyondSample = (ns: number) => Math.max(0, ns / 1e6 - LOOP_SAMPLE_MS)
  const loopDelayMs = { p99: beyondSample(loopDelay.percentile(99)), max: beyondSample(loopDelay.max) }
  const out: LatencyReport = { type: 'report', latencyMs: latency.take(), progressEvents, outOfOrder, gaps, indexes, last, open, ended: { ...ended }, loopDelayMs }
  progressEvents = 0
  return out
}

/** Open loop (request i sent at i / rate s, whatever happened to the earlier ones) or closed loop (rate 0). */
async function postJobs(command: Extract<LoadCommand, { cmd: 'post-jobs' }>): Promise<PostJobsResult> {
  const pool = new Pool(command.baseUrl, { connections: command.connections, pipelining: 1, keepAliveTimeout: 30_000 })
  const result: PostJobsResult = { type: 'post-jobs', sent: 0, statuses: {}, acceptedMs: new Float64Array(0), jobIds: [], firstSendNs: 0, lastAnswerNs: 0 }
  const accepted = new Samples()
  const total = command.partnumbers.length
  const start = nowNs()
  const stopSendingAt = start + command.durationMs * 1e6
  result.firstSendNs = start
  const post = async (partnumber: string) => {
    const begin = nowNs()
    try {
      const res = await pool.request({
        method: 'POST', path: '/classifications',
        headers: { authorization: `Bearer ${command.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ partnumber, description: 'benchmark part' }),
        signal: AbortSignal.timeout(command.timeoutMs),
      })
      const text = await res.body.text()
      const at = nowNs()
      result.lastAnswerNs = Math.max(result.lastAnswerNs, at)
      bump(result.statuses, String(res.statusCode))
      if (res.statusCode === 202) {
        accepted.push((at - begin) / 1e6)
        result.jobIds.push(JSON.parse(text).id)
      }
    } catch (err) {
      const { name, code, message } = err as Error & { code?: string }
      bump(result.statuses, name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : code ?? message)
    }
  }
  if (command.ratePerSec > 0) {
    const answers: Array<Promise<void>> = []
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = nowNs()
        const due = Math.min(total, Math.floor(((now - start) / 1e9) * command.ratePerSec) + 1)
        while (result.sent < due && now < stopSendingAt) answers.push(post(command.partnumbers[result.sent++]!))
        if (result.sent < total && now < stopSendingAt) setTimeout(tick, 1)
        else resolve()
      }
      tick()
    })
    await Promise.all(answers)
  } else {
    await Promise.all(Array.from({ length: command.connections }, async () => {
      while (result.sent < total && nowNs() < stopSendingAt) await post(command.partnumbers[result.sent++]!)
    }))
  }
  await pool.destroy()
  result.acceptedMs = accepted.take()
  return result
}

/** Every job at once: POST, then its stream until `done`. */
async function endToEnd(command: Extract<LoadCommand, { cmd: 'end-to-end' }>): Promise<EndToEndResult> {
  const baseUrl = `http://${command.target.host}:${command.target.port}`
  const pool = new Pool(baseUrl, { connections: command.partnumbers.length, pipelining: 1 })
  const result: EndToEndResult = { type: 'end-to-end', done: 0, errors: {}, totalMs: new Float64Array(0), acceptMs: new Float64Array(0), jobIds: [] }
  const totals = new Samples()
  const accepts = new Samples()
  await Promise.all(command.partnumbers.map(async (partnumber) => {
    const begin = nowNs()
    let id: string
    try {
      const res = await pool.request({
        method: 'POST', path: '/classifications',
        headers: { authorization: `Bearer ${command.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ partnumber }),
        headersTimeout: command.timeoutMs, bodyTimeout: command.timeoutMs,
      })
      const body = await res.body.text()
      if (res.statusCode !== 202) return bump(result.errors, `POST ${res.statusCode}`)
      accepts.push((nowNs() - begin) / 1e6)
      id = JSON.parse(body).id
      result.jobIds.push(id)
    } catch (err) {
      return bump(result.errors, `POST ${(err as { code?: string }).code ?? (err as Error).message}`)
    }
    await new Promise<void>((resolve) => {
      let finished = false
      const finish = (error?: string) => {
        if (finished) return
        finished = true
        clearTimeout(timer)
        if (error) bump(result.errors, error)
        conn.close()
        resolve()
      }
      const timer = setTimeout(() => finish('timeout'), command.timeoutMs)
      const conn = new SseConnection({ ...command.target, path: `/jobs/${id}/events`, headers: { authorization: `Bearer ${command.token}` } }, {
        onHead: (status) => { if (status !== 200) finish(`stream ${status}`) },
        onEvent(event) {
          if (event === 'done') {
            totals.push((nowNs() - begin) / 1e6)
            result.done++
            finish()
          } else if (event === 'failed') finish('failed event')
        },
        onEnd: (reason) => finish(`stream ended: ${reason ?? 'without done'}`),
      })
    })
  }))
  await pool.close()
  result.totalMs = totals.take()
  result.acceptMs = accepts.take()
  return result
}

async function handle(command: LoadCommand): Promise<LoadReply> {
  switch (command.cmd) {
    case 'open':
      closeAll()
      target = command.target
      headers = command.headers
      streams = command.streams.map((spec) => ({ spec, opened: false, last: 0 }))
      return openAll(streams, command.inflight, command.timeoutMs)
    case 'storm':
      // Every stream drops and comes back at once, as after a server restart or a network blip.
      closeAll()
      return openAll(streams, command.inflight, command.timeoutMs)
    case 'record':
      recording = command.on
      if (command.on) {
        latency.take()
        loopDelay.reset()
        progressEvents = outOfOrder = gaps = 0
      }
      return { type: 'ok' }
    case 'report':
      return report()
    case 'count':
      return { type: 'count', progressEvents }
    case 'close':
      return { type: 'closed', closed: closeAll() }
    case 'post-jobs':
      return postJobs(command)
    case 'end-to-end':
      return endToEnd(command)
  }
}

process.on('message', (command: LoadCommand) => {
  handle(command).then(send, (err: Error) => send({ type: 'error', message: err.stack ?? err.message }))
})
process.on('disconnect', () => process.exit(0))
send({ type: 'ok' })

import t0, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { eventually, silentLog, startServices, startStack, type Services, type Stack } from '../helpers/stack.js'
import { openEventStream, stillOpenAfter, type EventStreamClient, type SseEvent } from '../helpers/sse.js'
import { createRedisBus } from '../../src/services/bus/redis-bus.js'
import { buildSimulator } from '../../src/simulator/app.js'
import type { RealServerOptions } from '../../src/simulator/real-server-jobs.js'

// What a job's event stream says while the real AI server works (issue 12): how long a quiet job
// has waited, a job failed by its deadline that stays followed for a late answer, and a batch's
// progress counted by the gateway (items answered of all items), under both simulator profiles.
// Every wait below is a bound on a failure, not a pace: on a busy machine all of it is slower.

const { test } = t0
const services = await startServices()
t0.teardown(() => services.stop())

const HEARTBEAT = '400ms'
const DEADLINE = '2s'

/** The simulator's real-server profile (src/simulator/real-server-jobs.ts) over real HTTP, publishing on real Redis. */
async function startRealServer(redisUrl: string, options: RealServerOptions): Promise<{ url: string; close(): Promise<void> }> {
  const bus = await createRedisBus(redisUrl, silentLog)
  const simulator = await buildSimulator({ bus, profile: 'real-server', realServer: options })
  const url = await simulator.listen({ host: '127.0.0.1', port: 0 })
  return { url, close: async () => { await simulator.close(); await bus.close() } }
}

interface Profile {
  name: string
  /** A gateway on this profile; `strict` gives it a short JOB_DEADLINE (and a fresh database of its own). */
  stack(services: Services, strict: boolean): Promise<Stack>
  /** Contract scenarios are set per part number; the real server decides by the part number itself. */
  scenario(stack: Stack, partnumber: string, scenario: Record<string, unknown>): Promise<void>
  /** Part numbers whose single job goes quiet for longer than DEADLINE, then answers (the profile's way). */
  lateSingle: string
  /** The same for the late-answer test, on a job of its own. */
  lateSingleAgain: string
  /** A batch item that leaves the batch quiet for a long time. */
  slowItem: (name: string) => string
}

const env = (strict: boolean): Record<string, string> => ({
  SSE_HEARTBEAT_INTERVAL: HEARTBEAT,
  AI_BATCH_SIZE: '2',
  RATE_LIMIT_MAX: '100000',
  RATE_LIMIT_USER_MAX: '100000',
  ...(strict ? { JOB_DEADLINE: DEADLINE, JOB_SWEEP_INTERVAL: '200ms' } : {}),
})

const contract: Profile = {
  name: 'contract simulator',
  stack: (services, strict) => startStack(services, { simulator: { steps: 3, stepMs: 300 }, env: env(strict) }),
  scenario: (stack, partnumber, scenario) => stack.scenario(partnumber, scenario),
  // Configured below with scenarios: quiet for 8 s after progress 0, then the result.
  lateSingle: 'LATE-CONTRACT-1',
  lateSingleAgain: 'LATE-CONTRACT-2',
  slowItem: (name) => name,
}

const realServer: Profile = {
  name: 'real-server simulator (as intended)',
  async stack(services, strict) {
    // Strict: one "second" of the server is 800 ms, so its demo's 4 s between progress messages
    // (3.2 s) outlast the 2 s deadline, and its result comes 23 s in. Otherwise 100 ms (SLOWn items).
    const simulator = await startRealServer(services.redis.url, { variant: 'as-intended', agentMs: 1_000, secondMs: strict ? 800 : 100 })
    const stack = await startStack(services, { simulatorUrl: simulator.url, env: env(strict) })
    const close = stack.close
    stack.close = async () => { await close(); await simulator.close() }
    return stack
  },
  scenario: async () => {},
  // app/pre_proc.py's demo part numbers: progress 0..5 four seconds apart, nine seconds of silence, then the result.
  lateSingle: 'BC847BLT1G',
  lateSingleAgain: 'CL10C330JB8NNNC',
  // SLOWn: the fake agent runs n seconds (of 100 ms here).
  slowItem: (name) => `${name}-SLOW600`,
}

const types = (events: SseEvent[]) => events.map((e) => e.event).join(',')

/** Events of `stream` until `until` holds for one (included); fails after `timeoutMs`. */
async function collect(stream: EventStreamClient, until: (e: SseEvent) => boolean, timeoutMs = 60_000): Promise<SseEvent[]> {
  const events: SseEvent[] = []
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const event = await stream.next(undefined, Math.max(1, deadline - Date.now()))
    events.push(event)
    if (until(event)) return events
  }
}

const isOpen = (stream: EventStreamClient) => stillOpenAfter(stream, 100)

/** The `waiting` events since the last other event: one stretch of silence. */
function lastQuietStretch(events: SseEvent[]): SseEvent[] {
  let start = events.length
  while (start > 0 && events[start - 1]!.event === 'waiting') start--
  return events.slice(start)
}

function checkWaiting(t: Test, waiting: SseEvent[], jobId: string) {
  const wellFormed = (e: SseEvent) => e.data.job_id === jobId && Number.isInteger(e.data.quiet_seconds) && e.data.quiet_seconds >= 0
    && !Number.isNaN(Date.parse(e.data.last_activity_at)) && Object.keys(e.data).length === 3
  t.same(waiting.filter((e) => !wellFormed(e)), [], 'each waiting event is {job_id, quiet_seconds, last_activity_at}')
  const quiet = waiting.map((e) => e.data.quiet_seconds as number)
  t.ok(quiet.every((q, i) => i === 0 || q >= quiet[i - 1]!), `quiet_seconds never go back within a silence: ${quiet.join(', ')}`)
  t.ok(quiet.at(-1)! > quiet[0]!, 'and grow')
  t.equal(new Set(waiting.map((e) => e.data.last_activity_at)).size, 1, 'measured from one moment: the last word of the AI server')
}

for (const profile of [contract, realServer]) {
  test(profile.name, async (tp) => {
    const stack = await profile.stack(services, false)
    tp.teardown(() => stack.close())
    const token = await stack.login()
    const post = (path: string, body: unknown) => stack.api('POST', path, { token, body })
    const tag = profile === contract ? 'C' : 'R'

    await tp.test('a quiet job\'s stream says how long it has waited, on the heartbeat', async (t) => {
      const jobs = []
      if (profile === contract) {
        await stack.scenario(`QUIET-${tag}-1`, { outcome: 'silent', silentAfter: 0 })
        jobs.push((await post('/classifications', { partnumber: `QUIET-${tag}-1` })).body)
        await stack.scenario(`QUIET-${tag}-B1`, { stopAfterItems: 0 })
        jobs.push((await post('/classifications/batch', { partnumbers: [{ partnumber: `QUIET-${tag}-B1` }, { partnumber: `QUIET-${tag}-B2` }] })).body)
      } else {
        // The real server says nothing while its agent runs (here 60 s of SLOW600).
        jobs.push((await post('/classifications/batch', { partnumbers: [{ partnumber: profile.slowItem(`QUIET-${tag}-B1`) }] })).body)
      }
      for (const job of jobs) {
        t.ok(job.id, `${job.kind} job started`)
        const stream = await openEventStream(`${stack.url}${job.events_url}`)
        const snapshot = await stream.next('snapshot')
        t.ok(snapshot.data.last_activity_at, 'the snapshot says when the job last moved')
        // Until one silence has been told growing by three seconds (and at least three times).
        const events: SseEvent[] = []
        const grown = (stretch: SseEvent[]) => stretch.length >= 3 && stretch.at(-1)!.data.quiet_seconds - stretch[0]!.data.quiet_seconds >= 3
        while (!grown(lastQuietStretch(events))) events.push(await stream.next(undefined, 60_000))
        stream.close()
        const waiting = lastQuietStretch(events)
        t.ok(waiting.length >= 3, `${job.kind}: ${waiting.length} waiting events in the silence (events: ${types(events)})`)
        checkWaiting(t, waiting, job.id)
        const since = Date.parse(waiting[0]!.data.last_activity_at)
        t.ok(since >= Date.parse(snapshot.data.last_activity_at), 'quiet since the snapshot\'s last activity, or a later message')
        if (events.length === waiting.length) t.equal(waiting[0]!.data.last_activity_at, new Date(snapshot.data.last_activity_at).toISOString(), 'no message came: the snapshot\'s last activity')
        t.ok(waiting.at(-1)!.data.quiet_seconds <= (Date.now() - since) / 1000 + 1, 'quiet_seconds is the time since then')
        t.ok(stream.received.comments.includes('ping'), 'the heartbeat still pings, too')
      }
    })

    await tp.test('batch progress counts the items answered of all items, and never goes back', async (t) => {
      const partnumbers = Array.from({ length: 6 }, (_, i) => ({ partnumber: `PROG-${tag}-${i + 1}` }))
      const res = await post('/classifications/batch', { partnumbers })
      t.equal(res.status, 202)
      const stream = await openEventStream(`${stack.url}${res.body.events_url}`)
      const snapshot = await stream.next('snapshot')
      const events = await collect(stream, (e) => e.event === 'done' || e.event === 'failed', 120_000)
      t.equal(events.at(-1)!.event, 'done', `the batch ends (${types(events)})`)
      t.equal(events.at(-1)!.data.counts.total, 6)

      const answeredInSnapshot = snapshot.data.items.filter((i: any) => i.status !== 'PENDING').length
      t.same({ current: snapshot.data.progress.current, total: snapshot.data.progress.total }, { current: answeredInSnapshot, total: 6 },
        'the snapshot\'s progress: items answered of all items')
      const chunks = (await stack.db.query('SELECT count(*)::int AS n FROM job_chunks WHERE job_id = $1', [res.body.id])).rows[0].n
      t.equal(chunks, 3, 'three chunks of two went to the AI server')

      let furthest = snapshot.data.progress.current as number
      let known = answeredInSnapshot
      const progress = events.filter((e) => e.event === 'progress')
      for (const e of events) {
        if (e.event === 'item') known++
        if (e.event !== 'progress') continue
        t.equal(e.data.total, 6, 'total: the items of the batch')
        t.ok(e.data.current >= furthest, `current ${e.data.current} is not below what the stream told before (${furthest})`)
        t.equal(e.data.current, Math.min(known, 6), 'current: the items answered as the stream knows them')
        furthest = e.data.current
      }
      t.ok(progress.length > 0, `${progress.length} progress events, each with the AI server's text: ${progress.map((e) => e.data.message).join(' | ')}`)
      t.ok(progress.every((e) => typeof e.data.message === 'string'), 'the AI server\'s text rides along')
      t.equal(known, 6, 'every item answered, in the snapshot or as an event')
    })

    const strict = await profile.stack(services, true)
    tp.teardown(() => strict.close())
    const strictToken = await strict.login()
    const strictPost = (path: string, body: unknown) => strict.api('POST', path, { token: strictToken, body })
    if (profile === contract) {
      // Quiet for 8 s after progress 0 (longer than the 2 s deadline), then the result.
      for (const partnumber of [profile.lateSingle, profile.lateSingleAgain]) await strict.scenario(partnumber, { steps: 0, stepMs: 8_000 })
    }

    /** Waits for `failed` (timed out), then checks the stream is still open after a few heartbeats. */
    async function staysOpenAfterTimeout(t: Test, stream: EventStreamClient, jobId: string) {
      const failed = await stream.next('failed', 60_000)
      t.equal(failed.data.timed_out, true, 'failed with timed_out: true')
      t.match(failed.data.error, /^Timed out: no word from the AI server/)
      t.ok(Date.parse(failed.data.last_activity_at) <= Date.now() - 2_000,
        `it says since when the job has been quiet: ${failed.data.last_activity_at}, the deadline (2 s) before or more`)
      const pings = stream.received.comments.filter((c) => c === 'ping').length
      const after: SseEvent[] = []
      while (after.filter((e) => e.event === 'waiting').length < 3) after.push(await stream.next(undefined, 30_000))
      await eventually(() => stream.received.comments.filter((c) => c === 'ping').length >= pings + 3, 30_000)
      t.ok(await isOpen(stream), `still open after three heartbeats (then: ${types(after)})`)
      t.notOk(after.some((e) => e.event === 'failed' || e.event === 'done'), 'no second failed (nor a done: nothing answered)')
      // Quiet since the AI server's last word, so for longer than the deadline (until a late message, if one comes).
      const firstOther = after.findIndex((e) => e.event !== 'waiting')
      const firstStretch = firstOther < 0 ? after : after.slice(0, firstOther)
      t.ok(firstStretch.every((e) => e.data.quiet_seconds >= 2), `waiting goes on, quiet for longer than the deadline: ${firstStretch.map((e) => e.data.quiet_seconds).join(', ')}`)
      const job = (await strict.api('GET', `/jobs/${jobId}`, { token: strictToken })).body
      t.match(job, { status: 'FAILED', timed_out: true }, 'the job as stored')
      return failed
    }

    await tp.test('a job failed by its deadline: failed with timed_out, and the stream stays open for a late answer', async (t) => {
      if (profile === contract) await strict.scenario(`TIMEOUT-${tag}-1`, { outcome: 'silent', silentAfter: 0 })
      const single = (await strictPost('/classifications', { partnumber: profile === contract ? `TIMEOUT-${tag}-1` : profile.lateSingle })).body
      const singleStream = await openEventStream(`${strict.url}${single.events_url}`)
      t.teardown(() => singleStream.close())
      await singleStream.next('snapshot')
      await staysOpenAfterTimeout(t, singleStream, single.id)

      // A batch: one item answered, then silence (contract); an agent run far longer than the deadline (real server).
      if (profile === contract) await strict.scenario(`TIMEOUT-${tag}-B1`, { stopAfterItems: 1 })
      const items = profile === contract ? [`TIMEOUT-${tag}-B1`, `TIMEOUT-${tag}-B2`, `TIMEOUT-${tag}-B3`] : [profile.slowItem(`TIMEOUT-${tag}-B1`), `TIMEOUT-${tag}-B2`, `TIMEOUT-${tag}-B3`]
      const batch = (await strictPost('/classifications/batch', { partnumbers: items.map((partnumber) => ({ partnumber })) })).body
      const batchStream = await openEventStream(`${strict.url}${batch.events_url}`)
      t.teardown(() => batchStream.close())
      const snapshot = await batchStream.next('snapshot')
      const failed = await staysOpenAfterTimeout(t, batchStream, batch.id)
      t.same(failed.data.counts.pending, 0, 'every item answered (by the deadline, for those left)')
      // Progress of the stream, the deadline's item failures included, never went back.
      const told = [snapshot, ...batchStream.received.events.filter((e) => e.event === 'progress')].map((e) => (e.event === 'snapshot' ? e.data.progress.current : e.data.current))
      t.ok(told.every((c, i) => i === 0 || c >= told[i - 1]!), `progress never went back: ${told.join(', ')}`)
    })

    await tp.test('a stream opened on a timed-out job: snapshot, failed, and it stays open', async (t) => {
      if (profile === contract) await strict.scenario(`TIMEOUT-${tag}-2`, { outcome: 'silent', silentAfter: 0 })
      const partnumber = profile === contract ? `TIMEOUT-${tag}-2` : 'CL10B472KB8NNNC'
      const job = (await strictPost('/classifications', { partnumber })).body
      await eventually(async () => (await strict.api('GET', `/jobs/${job.id}`, { token: strictToken })).body.timed_out, 60_000)
      const stream = await openEventStream(`${strict.url}${job.events_url}`)
      t.teardown(() => stream.close())
      const snapshot = await stream.next()
      t.equal(snapshot.event, 'snapshot')
      t.match(snapshot.data, { status: 'FAILED', timed_out: true })
      const failed = await stream.next()
      t.equal(failed.event, 'failed', 'then failed at once')
      await staysOpenAfterTimeout(t, { ...stream, next: async (type, ms) => (type === 'failed' ? failed : stream.next(type, ms)) }, job.id)
      t.equal(stream.received.events.filter((e) => e.event === 'failed').length, 1, 'failed once')
    })

    // Needs the listener's revival of a timed-out job (a late valid answer turns it DONE and its
    // `done` reaches the hub once written): without it the stream stays open and this test fails.
    await tp.test('a late answer revives a timed-out job: its open stream gets done and ends', async (t) => {
      const job = (await strictPost('/classifications', { partnumber: profile.lateSingleAgain })).body
      const stream = await openEventStream(`${strict.url}${job.events_url}`)
      t.teardown(() => stream.close())
      await stream.next('snapshot')
      const failed = await stream.next('failed', 60_000)
      t.equal(failed.data.timed_out, true, 'first failed by the deadline')
      const done = await stream.next('done', 60_000)
      t.equal(done.data.status, 'DONE')
      t.ok(done.data.result?.id, 'the stored classification')
      await stream.rest(10_000)
      t.equal(stream.received.events.filter((e) => e.event === 'failed').length, 1, 'failed once, then done, then the end')
      const stored = (await strict.api('GET', `/jobs/${job.id}`, { token: strictToken })).body
      t.match(stored, { status: 'DONE', timed_out: false }, 'revived')
    })
  })
}

import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import type { AiServer } from './real-ai-server.js'
import { aiChannels, aiEnded, followEvents, gatewayVerdicts, type UserSide, type WiredMessage, type WireTap } from './observe.js'
import { normalizeResult, resultPartnumber } from '../../src/services/ai/classification-result.js'

// The scenarios of a peer run, each a user's request through the gateway to the AI server, and
// what came of it. The part numbers steer the fake agent (python/shim/fake_answers.py).

export interface Context {
  user: UserSide
  tap: WireTap
  ai: AiServer
  /** The gateway's JOB_DEADLINE in this phase, in seconds. */
  deadlineSeconds: number
  clock: () => number
}

export interface Outcome {
  name: string
  /** The issue 12 items this scenario is evidence for. */
  items: string
  asked: string
  /** The AI server's messages on the job's channels (not the gateway's announcements). */
  sent: string[]
  /** Short form for the table. */
  sentSummary: string
  userGot: string[]
  userGotSummary: string
  lost: string[]
  notes: string[]
}

type Job = Record<string, any>

const NEVER_ANSWERED = 'The AI server finished the batch without answering this part number'

export async function startSingle(ctx: Context, partnumber: string): Promise<{ status: number; body: Job }> {
  const res = await ctx.user.api('POST', '/classifications', { token: ctx.user.token, body: { partnumber, reclassify: true } })
  return { status: res.status, body: res.body }
}

export async function startBatch(ctx: Context, partnumbers: string[]): Promise<{ status: number; body: Job }> {
  const res = await ctx.user.api('POST', '/classifications/batch', { token: ctx.user.token, body: { partnumbers: partnumbers.map((partnumber) => ({ partnumber })), reclassify: true } })
  return { status: res.status, body: res.body }
}

export async function getJob(ctx: Context, id: string): Promise<Job> {
  const res = await ctx.user.api('GET', `/jobs/${id}`, { token: ctx.user.token })
  if (res.status !== 200) throw new Error(`GET /jobs/${id}: ${res.status}`)
  return res.body
}

/**
 * Waits until the job is over for the user AND the AI server has said its last word on every
 * channel of the job (or `aiWaitSeconds` passed: a server that went silent), then a moment for
 * the gateway to deal with what came last.
 */
export async function settle(ctx: Context, id: string, aiWaitSeconds: number): Promise<Job> {
  const until = ctx.clock() + aiWaitSeconds
  let job = await getJob(ctx, id)
  for (;;) {
    const channels = await aiChannels(ctx.user.db, id)
    const aiDone = channels.length > 0 && channels.every((c) => aiEnded(ctx.tap.channels.get(c) ?? [], job.kind))
    const over = job.status === 'DONE' || job.status === 'FAILED'
    if ((over && aiDone) || ctx.clock() > until) break
    await sleep(250)
    job = await getJob(ctx, id)
  }
  await sleep(1_000)
  return getJob(ctx, id)
}

const short = (text: unknown, max = 90) => {
  const s = String(text).replace(/\n/g, '⏎')
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`
}

/** The part number an agent's text answer is about (its final answer's "part_number"). */
function answerAbout(text: unknown): string {
  const named = /"part_number":\s*("(?:[^"\\]|\\.)*"|null)/.exec(String(text ?? ''))?.[1]
  return named ? ` [agent answer about ${named}]` : ''
}

/** One AI message as a line: time, status, and what matters of it. */
function describe(m: { at: number; parsed?: Record<string, any>; raw: string }, started: number): string {
  const t = `+${(m.at - started).toFixed(1)}s`
  const p = m.parsed
  if (!p) return `${t} not JSON: ${short(m.raw)}`
  const job = p.job_id === null || p.job_id === undefined ? 'job_id null' : 'job_id set'
  switch (p.status) {
    case 'processing':
      return `${t} processing ${p.progress?.current}/${p.progress?.total} (${job}) "${short(p.progress?.message, 60)}"`
    case 'failed':
      return `${t} failed (${job}) "${short(p.error, 80)}"`
    case 'partial_result':
      return `${t} partial_result ${p.current}/${p.total} "${short(p.message, 60)}" single_classification=${resultText(p.single_classification)}`
    case 'done':
      return `${t} done (${job})${p.result === undefined ? '' : ` result=${resultText(p.result)}`}`
    default:
      return `${t} ${short(p.raw ?? JSON.stringify(p))}`
  }
}

function resultText(result: unknown): string {
  if (typeof result === 'string') return `string "${short(result, 40)}"${answerAbout(result)}`
  if (!result || typeof result !== 'object') return JSON.stringify(result)
  const r = result as Record<string, unknown>
  return `{partnumber: ${JSON.stringify(r.partnumber)}, ncm: ${JSON.stringify(r.ncm)}${r.description ? `, description: "${short(r.description, 40)}"` : ''}}${answerAbout(r.description)}`
}

/** A result waiting for review, as the user sees it. */
const review = (result: Job) => (result.status === 'PENDING' ? ` [PENDING review: ${result.review_reasons.map((r: Job) => r.code).join(', ')}${result.answered_partnumber ? `; answer names ${result.answered_partnumber}` : ''}]` : '')

/** What the user sees of a job: status, error, result or items. */
function userView(job: Job): { lines: string[]; summary: string; neverAnswered: string[] } {
  const lines = [`job ${job.kind} ${job.status}${job.error ? `: "${short(job.error, 100)}"` : ''}`]
  const neverAnswered: string[] = []
  if (job.kind === 'SINGLE') {
    lines.push(job.result ? `result: ${job.result.partnumber ?? job.partnumber} NCM ${job.result.ncm_formatted ?? job.result.ncm}${review(job.result)}` : 'result: none')
    return { lines, summary: `${job.status}${job.result ? ` NCM ${job.result.ncm_formatted}` : job.error ? ` "${short(job.error, 60)}"` : ''}`, neverAnswered }
  }
  for (const item of job.items ?? []) {
    const silent = item.status === 'PENDING' || item.error === NEVER_ANSWERED || /^Timed out/.test(item.error ?? '')
    if (silent) neverAnswered.push(item.partnumber)
    lines.push(`  item ${item.partnumber}: ${item.status}${item.result ? ` NCM ${item.result.ncm_formatted}${review(item.result)}` : ''}${item.error ? ` "${short(item.error, 80)}"` : ''}${silent ? ' [never answered]' : ''}`)
  }
  for (const kept of job.unmatched_answers ?? []) {
    lines.push(`  kept on the job (${kept.reason}): ${kept.partnumber ?? 'no part number'}${kept.result ? ` NCM ${kept.result.ncm}` : ` "${short(kept.error, 80)}"`}`)
  }
  const c = job.counts ?? {}
  const summary = `${job.status}: ${c.done ?? 0} done, ${c.failed ?? 0} failed${neverAnswered.length ? ` (${neverAnswered.length} never answered: ${neverAnswered.join(', ')})` : ''}`
  lines.splice(1, 0, `items: ${c.total ?? 0} (${c.done ?? 0} done, ${c.failed ?? 0} failed, ${c.pending ?? 0} pending); never answered: ${neverAnswered.length ? neverAnswered.join(', ') : 'none'}`)
  return { lines, summary, neverAnswered }
}

/** The gateway's own warnings about these jobs' messages (what it says it ignored or could not use). */
function gatewayNotes(ctx: Context, jobIds: string[], channels: string[]): string[] {
  const counts = new Map<string, number>()
  for (const v of gatewayVerdicts(ctx.user.gateway, jobIds, channels)) {
    const what = v.status ?? ''
    const line = `gateway log: "${v.msg}"${what ? ` (${what}${v.reason ? `: ${v.reason}` : ''})` : ''}`
    counts.set(line, (counts.get(line) ?? 0) + 1)
  }
  return [...counts].map(([line, n]) => (n > 1 ? `${line} x${n}` : line))
}

const UNUSABLE = 'AI server sent an unusable result'
const normalize = (pn: string) => pn.trim().replace(/\s+/g, ' ').toUpperCase()

/**
 * Whether an answer of the AI server (a message other than progress) reached the user, judged by
 * what the gateway stored: a single job's result or failure came from it, or a batch item holds it.
 * Returns why it was lost, or undefined when it was used (or is no answer: a batch's bare `done`).
 */
function lostBecause(m: WiredMessage & { channel: string }, job: Job, endedAt: number | undefined): string | undefined {
  const p = m.parsed
  if (!p) return 'not JSON'
  const late = endedAt !== undefined && m.wall > endedAt
  if (job.kind === 'SINGLE') {
    if (p.status !== 'done' && p.status !== 'failed') return undefined
    // The message that ended the job reaches this tap about when the gateway stores it: what the
    // job holds decides, and the time only says how late a lost answer was.
    const error = String(job.error ?? '')
    const used = p.status === 'done'
      ? job.status === 'DONE' || error.startsWith(UNUSABLE) || error.startsWith('AI server finished without a result')
      : job.status === 'FAILED' && (error === String(p.error ?? '').trim() || (!p.error && error.startsWith('AI server reported a failure')))
    if (used) return undefined
    return late ? `arrived ${((m.wall - endedAt!) / 1000).toFixed(1)} s after the job ended` : 'the job holds another outcome'
  }
  const items: Job[] = job.items ?? []
  const after = late ? ` (arrived ${((m.wall - endedAt!) / 1000).toFixed(1)} s after the batch ended)` : ''
  switch (p.status) {
    case 'failed': {
      if (items.some((i) => i.error === (p.error ?? null) || (p.error == null && i.error?.startsWith('AI server reported a failure')))) return undefined
      return `no item holds this failure${after}`
    }
    case 'partial_result':
    case 'done': {
      const raw = p.status === 'done' ? p.result : p.single_classification
      if (p.status === 'done' && (raw === undefined || raw === null)) return undefined
      // Read as the gateway reads it; the answer is held by an item that took it, or kept on the job.
      const result = normalizeResult(raw)
      const named = [resultPartnumber(result), /partnumber\s*(.+?)\s*$/.exec(p.message ?? '')?.[1]].filter((n): n is string => Boolean(n)).map(normalize)
      const kept = (job.unmatched_answers ?? []).some((u: Job) => (result.ok ? u.result?.ncm === result.fields.ncm : Boolean(u.error)))
      if (!result.ok) {
        if (items.some((i) => String(i.error ?? '').startsWith(UNUSABLE)) || kept) return undefined
        return `an unusable result no item holds (${result.reason})${after}`
      }
      const holders = items.filter((i) => i.status === 'DONE' && i.source === 'AI' && i.result?.ncm === result.fields.ncm)
      if (holders.some((i) => named.length === 0 || named.includes(i.partnumber) || named.includes(normalize(i.result?.answered_partnumber ?? ''))) || kept) return undefined
      return `no item holds it and it was not kept${after}`
    }
    default:
      return undefined
  }
}

/** Failures the gateway pinned on another item than the one their text names. */
function misattributed(job: Job, sent: Array<{ parsed?: Record<string, any> }>): string[] {
  if (job.kind !== 'BATCH') return []
  const wrong: string[] = []
  for (const m of sent) {
    const named = /^Erro ao processar partnumber(.+)$/.exec(m.parsed?.status === 'failed' ? m.parsed.error ?? '' : '')?.[1]
    if (!named) continue
    const pn = named.trim().replace(/\s+/g, ' ').toUpperCase()
    const holder = (job.items ?? []).find((i: Job) => i.error === m.parsed!.error)
    if (holder && holder.partnumber !== pn) wrong.push(`"${m.parsed!.error}" is on item ${holder.partnumber}, not ${pn}`)
  }
  return wrong
}

/** Observes one job to its end and says what came of it. */
export async function outcome(ctx: Context, spec: { name: string; items: string; asked: string; started: number; job: Job; extraNotes?: string[]; otherJobIds?: string[] }): Promise<Outcome> {
  const channels = await aiChannels(ctx.user.db, spec.job.id)
  const sent = ctx.tap.fromAi(channels)
  const view = userView(spec.job)
  const notes = gatewayNotes(ctx, [spec.job.id, ...(spec.otherJobIds ?? [])], channels)
  const endedAt = spec.job.finished_at ? Date.parse(spec.job.finished_at) : undefined
  const lost = sent.flatMap((m) => {
    const why = lostBecause(m, spec.job, endedAt)
    return why ? [`${describe(m, spec.started)}: ${why}`] : []
  })
  const answers = sent.filter((m) => m.parsed?.status !== 'processing')
  const processing = sent.length - answers.length
  const byStatus = answers.reduce<Record<string, number>>((acc, m) => ((acc[m.parsed?.status ?? 'invalid'] = (acc[m.parsed?.status ?? 'invalid'] ?? 0) + 1), acc), {})
  return {
    name: spec.name,
    items: spec.items,
    asked: spec.asked,
    sent: sent.map((m) => `${channels.length > 1 ? `[chunk ${channels.indexOf(m.channel)}] ` : ''}${describe(m, spec.started)}`),
    sentSummary: `${processing} processing; ${Object.entries(byStatus).map(([s, n]) => `${n} ${s}`).join(', ') || 'no answer'}`,
    userGot: view.lines,
    userGotSummary: view.summary,
    lost,
    notes: [...(spec.extraNotes ?? []), ...misattributed(spec.job, sent), ...notes],
  }
}

// ---------------------------------------------------------------------------------------------

export async function single(ctx: Context, name: string, items: string, partnumber: string, aiWaitSeconds: number, notes: string[] = []): Promise<Outcome> {
  const started = ctx.clock()
  const start = await startSingle(ctx, partnumber)
  if (start.status !== 202) throw new Error(`${name}: POST /classifications answered ${start.status} ${JSON.stringify(start.body)}`)
  const job = await settle(ctx, start.body.id, aiWaitSeconds)
  return outcome(ctx, { name, items, asked: `single ${JSON.stringify(partnumber)} (JOB_DEADLINE ${ctx.deadlineSeconds} s)`, started, job, extraNotes: notes })
}

export async function batch(ctx: Context, name: string, items: string, partnumbers: string[], aiWaitSeconds: number, options: { retry?: boolean; sse?: boolean; notes?: string[] } = {}): Promise<Outcome> {
  const started = ctx.clock()
  const start = await startBatch(ctx, partnumbers)
  if (start.status !== 202) throw new Error(`${name}: POST /classifications/batch answered ${start.status} ${JSON.stringify(start.body)}`)
  const stream = options.sse ? await followEvents(ctx.user, start.body as { id: string }) : undefined
  const job = await settle(ctx, start.body.id, aiWaitSeconds)
  const notes = [...(options.notes ?? [])]
  if (stream) {
    // A batch's stream ends with its `done`; one failed by the deadline stays open for a late answer.
    await Promise.race([stream.ended.catch(() => {}), sleep(5_000)])
    stream.close()
    const events = stream.received.events
    const progress = events.filter((e) => e.event === 'progress').map((e) => `${e.data.current}/${e.data.total}`)
    const itemsSeen = events.filter((e) => e.event === 'item').length
    notes.push(`the user's event stream: progress ${progress.join(', ') || 'none'} (for ${job.counts?.total} items; ${itemsSeen} item events)`)
  }
  if (options.retry) {
    const retry = await ctx.user.api('POST', `/jobs/${job.id}/retry`, { token: ctx.user.token })
    notes.push(`retry of the finished batch: ${retry.status} ${retry.body?.code ?? ''} ${short(retry.body?.message ?? '', 90)}`)
  }
  return outcome(ctx, { name, items, asked: `batch ${JSON.stringify(partnumbers)} (JOB_DEADLINE ${ctx.deadlineSeconds} s)`, started, job, extraNotes: notes })
}

/** Two batches whose agent runs overlap: the real server keeps one Report for all its jobs. */
export async function overlapping(ctx: Context): Promise<Outcome[]> {
  const started = ctx.clock()
  const first = await startBatch(ctx, ['O-A-SLOW3'])
  await sleep(1_500)
  const second = await startBatch(ctx, ['O-B-SLOW4'])
  const [a, b] = await Promise.all([settle(ctx, first.body.id, 20), settle(ctx, second.body.id, 20)])
  const note = 'batch A (agent 3 s) started, batch B (agent 4 s) 1.5 s later'
  return [
    await outcome(ctx, { name: 'overlapping batches: A', items: '5, 7', asked: 'batch ["O-A-SLOW3"], then B', started, job: a, extraNotes: [note] }),
    await outcome(ctx, { name: 'overlapping batches: B', items: '5, 7', asked: 'batch ["O-B-SLOW4"], 1.5 s after A', started, job: b, extraNotes: [note] }),
  ]
}

/** The AI server killed while an agent runs: nothing more comes. */
export async function killedMidJob(ctx: Context): Promise<Outcome> {
  const started = ctx.clock()
  const start = await startBatch(ctx, ['K-1-SLOW30', 'K-2'])
  await sleep(2_000)
  await ctx.ai.stop()
  const job = await settle(ctx, start.body.id, ctx.deadlineSeconds + 4)
  await ctx.ai.start()
  return outcome(ctx, { name: 'AI server killed mid-job', items: '-', asked: `batch ["K-1-SLOW30","K-2"]; the AI server is killed 2 s in (JOB_DEADLINE ${ctx.deadlineSeconds} s)`, started, job })
}

/** The AI server down when jobs start, then back: what the user gets, and whether a retry works. */
export async function serverDown(ctx: Context): Promise<Outcome[]> {
  const started = ctx.clock()
  await ctx.ai.stop()
  const single = await startSingle(ctx, 'D-1')
  const many = await startBatch(ctx, ['D-2', 'D-3'])
  await ctx.ai.start()
  const results: Outcome[] = []
  for (const [label, start] of [['single', single], ['batch', many]] as const) {
    const id = start.body?.details?.job_id ?? start.body?.job_id
    const notes = [`POST answered ${start.status} ${start.body?.code ?? ''}: "${short(start.body?.message ?? '', 80)}"`]
    if (!id) {
      results.push({ name: `AI server down: ${label}`, items: '-', asked: label, sent: [], sentSummary: 'nothing', userGot: [JSON.stringify(start.body)], userGotSummary: `HTTP ${start.status}`, lost: [], notes })
      continue
    }
    const failed = await getJob(ctx, id)
    notes.push(`job after the refusal: ${failed.status} "${short(failed.error, 70)}"`)
    const retry = await ctx.user.api('POST', `/jobs/${id}/retry`, { token: ctx.user.token })
    notes.push(`retry once the server is back: ${retry.status}`)
    const job = retry.status === 202 ? await settle(ctx, id, 15) : failed
    results.push(await outcome(ctx, { name: `AI server down: ${label}, then retried`, items: '-', asked: `${label} ${label === 'single' ? '"D-1"' : '["D-2","D-3"]'} while the AI server is down`, started, job, extraNotes: notes }))
  }
  return results
}

/**
 * Requests straight to the AI server, no gateway: what it answers to what the gateway never
 * sends (an empty batch, bad payloads), and how often its messages beat its own HTTP answer.
 */
export async function probeDirectly(ctx: Context, rounds = 20): Promise<string[]> {
  const lines: string[] = []
  const post = async (path: string, body: string, contentType = 'application/json') => {
    const res = await request(`${ctx.ai.url}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body })
    const text = await res.body.text()
    return { status: res.statusCode, type: String(res.headers['content-type']), text, at: Date.now() }
  }
  const show = (a: { status: number; type: string; text: string }) => `${a.status} ${a.type} ${JSON.stringify(short(a.text.trim(), 110))}`
  lines.push(`batch whose partnumbers is a list: ${show(await post('/process/batch_partnumbers', JSON.stringify({ progress_channel: 'progress-probe-x', partnumbers: ['A'] })))}`)
  lines.push(`single without progress_channel: ${show(await post('/process/single_partnumber', JSON.stringify({ partnumber: 'A' })))}`)
  lines.push(`single sent as text/plain: ${show(await post('/process/single_partnumber', JSON.stringify({ progress_channel: 'progress-probe-x', partnumber: 'A' }), 'text/plain'))}`)
  lines.push(`batch whose body is not JSON: ${show(await post('/process/batch_partnumbers', '{"progress_channel": '))}`)
  const empty = `progress-probe-${randomUUID()}`
  lines.push(`empty batch: ${show(await post('/process/batch_partnumbers', JSON.stringify({ progress_channel: empty, partnumbers: {} })))}`)
  await sleep(2_000)
  lines.push(`  then on its channel: ${(ctx.tap.channels.get(empty) ?? []).map((m) => m.raw).join(' | ') || 'nothing'} (and nothing more in 2 s)`)
  const before = { single: 0, empty: 0 }
  for (let i = 0; i < rounds; i++) {
    for (const kind of ['single', 'empty'] as const) {
      const channel = `progress-probe-${randomUUID()}`
      const answer = kind === 'single'
        ? await post('/process/single_partnumber', JSON.stringify({ progress_channel: channel, partnumber: 'PROBE-1' }))
        : await post('/process/batch_partnumbers', JSON.stringify({ progress_channel: channel, partnumbers: {} }))
      await sleep(300)
      if ((ctx.tap.channels.get(channel) ?? []).some((m) => m.wall < answer.at)) before[kind]++
    }
  }
  lines.push(`messages received before the HTTP answer was read: single (not a demo part number) ${before.single}/${rounds}, empty batch ${before.empty}/${rounds}`)
  return lines
}

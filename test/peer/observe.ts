import type pg from 'pg'
import { Redis } from 'ioredis'
import type { GatewayProcess } from '../helpers/gateway-process.js'
import { apiClient, type ApiClient } from '../helpers/stack.js'
import { openEventStream, type EventStreamClient } from '../helpers/sse.js'

// What a peer run watches: every message on every progress channel (as Redis delivered it),
// the gateway's own account of what it did with them (its warning log lines), what the user
// gets from the API, and the job's event stream.

export interface WiredMessage {
  /** Seconds since the run's clock started. */
  at: number
  /** Date.now() at arrival, to compare with the gateway's timestamps. */
  wall: number
  raw: string
  parsed?: Record<string, any>
  /** A gateway sweeper's announcement on the channel, not the AI server's. */
  byGateway: boolean
}

/** Every message on progress-* channels, by channel. */
export class WireTap {
  readonly channels = new Map<string, WiredMessage[]>()
  private constructor(private readonly subscriber: Redis, private readonly clock: () => number) {}

  static async open(redisUrl: string, clock: () => number): Promise<WireTap> {
    const subscriber = new Redis(redisUrl, { maxRetriesPerRequest: null })
    const tap = new WireTap(subscriber, clock)
    subscriber.on('pmessage', (_pattern: string, channel: string, raw: string) => {
      let parsed: Record<string, any> | undefined
      try { parsed = JSON.parse(raw) } catch { parsed = undefined }
      const list = tap.channels.get(channel) ?? []
      list.push({ at: clock(), wall: Date.now(), raw, parsed, byGateway: raw.endsWith(',"by":"gateway"}') })
      tap.channels.set(channel, list)
    })
    await subscriber.psubscribe('progress-*')
    return tap
  }

  /** The AI server's messages on these channels, in arrival order. */
  fromAi(channels: string[]): Array<WiredMessage & { channel: string }> {
    return channels.flatMap((channel) => (this.channels.get(channel) ?? []).filter((m) => !m.byGateway).map((m) => ({ ...m, channel })))
      .sort((a, b) => a.at - b.at)
  }

  close(): Promise<unknown> {
    return this.subscriber.quit()
  }
}

export interface UserSide {
  api: ApiClient
  token: string
  gateway: GatewayProcess
  db: pg.Pool
}

export async function signIn(gateway: GatewayProcess, db: pg.Pool, email: string, password: string): Promise<UserSide> {
  const api = apiClient(gateway.url)
  const res = await api('POST', '/auth/login', { body: { email, password } })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
  return { api, token: res.body.access_token, gateway, db }
}

/** The channels the gateway gave the AI server for a job (a single job's own; a batch's chunks'). */
export async function aiChannels(db: pg.Pool, jobId: string): Promise<string[]> {
  const chunks = await db.query<{ channel: string }>('SELECT channel FROM job_chunks WHERE job_id = $1 ORDER BY attempt, chunk', [jobId])
  if (chunks.rows.length) return chunks.rows.map((r) => r.channel)
  const job = await db.query<{ channel: string; kind: string }>('SELECT channel, kind FROM jobs WHERE id = $1', [jobId])
  return job.rows[0]?.kind === 'SINGLE' ? [job.rows[0].channel] : []
}

/**
 * Whether the AI server has said its last word on a channel: a single job's `done` or `failed`; a
 * batch's closing `done`, the one without a result (app/jobs.py send_done_job; a `done` with a
 * result comes from execute() in the middle of a batch when its Report publishes).
 */
export function aiEnded(messages: WiredMessage[], kind: 'SINGLE' | 'BATCH'): boolean {
  return messages.some((m) => !m.byGateway && m.parsed !== undefined && (kind === 'SINGLE'
    ? m.parsed.status === 'done' || m.parsed.status === 'failed'
    : m.parsed.status === 'done' && !('result' in m.parsed)))
}

/** The SSE `progress` events a user's browser would get for a job, recorded from its start. */
export async function followEvents(user: UserSide, job: { id: string; events_url?: string }): Promise<EventStreamClient> {
  return openEventStream(`${user.gateway.url}/jobs/${job.id}/events`, { authorization: `Bearer ${user.token}` })
}

export const GATEWAY_VERDICTS = {
  late: 'AI message after the job ended; ignored',
  lateRepeated: 'repeated AI message after the job ended; ignored',
  keptUnmatched: 'AI answer that no item of the batch could take; kept on the job',
  lateAnswer: 'late AI answer applied: the job is DONE with it',
  unusable: 'AI server sent an unusable result; stored as a failure',
  noJob: 'AI message on a channel that no job owns; ignored',
  invalid: 'invalid AI message; ignored',
  backwards: 'AI progress went backwards; stored, the job keeps its furthest progress',
} as const

/** The gateway's warning lines about these jobs or channels. */
export function gatewayVerdicts(gateway: GatewayProcess, jobIds: string[], channels: string[]): Array<Record<string, any>> {
  const verdicts = new Set<string>(Object.values(GATEWAY_VERDICTS))
  return gateway.logs.filter((l) => verdicts.has(l.msg) && (jobIds.includes(l.jobId) || channels.includes(l.channel)))
}

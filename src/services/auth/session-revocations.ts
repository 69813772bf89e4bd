import type { Queryable } from '../../db/queryable.js'

/** Where instances tell each other that sessions ended (logout, refresh-token reuse, account disabled or demoted). */
export const SESSIONS_REVOKED_CHANNEL = 'gateway:sessions-revoked'

/** Whom to look at again: one session, or every session of one user. */
export type RevocationNotice = { sessionId: string; userId?: undefined } | { userId: string; sessionId?: undefined }

/** An open event stream, as far as its right to stay open goes. */
export interface WatchedStream {
  sessionId: string
  userId: string
  /** Owner of the job the stream shows: the user must stay its owner or an admin. */
  ownerId: string
  close(): void
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const RECENT_NOTICE_MS = 60_000
const CHECK_CHUNK = 5_000

/** The notice as published between instances, with the instance it came from; undefined for anything else (ignored, never thrown). */
export function parseNotice(raw: string): (RevocationNotice & { from?: string }) | undefined {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  const { session_id: sessionId, user_id: userId, from } = value as Record<string, unknown>
  const origin = typeof from === 'string' ? { from } : {}
  if (typeof sessionId === 'string' && UUID.test(sessionId)) return { sessionId, ...origin }
  if (typeof userId === 'string' && UUID.test(userId)) return { userId, ...origin }
  return undefined
}

export function formatNotice(notice: RevocationNotice, from: string): string {
  return JSON.stringify(notice.sessionId ? { session_id: notice.sessionId, from } : { user_id: notice.userId, from })
}

/**
 * The open event streams of this process by session and by user, so that the end of a session
 * closes its streams at once instead of whenever the client goes away. A notice only says whom to
 * look at: the database decides whether each stream may go on, so a late, repeated or forged notice
 * can never close a stream that is still allowed, and a periodic check of every stream catches a
 * notice that was lost.
 */
export class SessionStreams {
  private readonly bySession = new Map<string, Set<WatchedStream>>()
  private readonly byUser = new Map<string, Set<WatchedStream>>()
  // Notices of the last minute, for streams whose authentication raced with a notice.
  private readonly recentNotices = new Map<string, number>()

  constructor(private readonly db: Queryable) {}

  get size(): number {
    let n = 0
    for (const set of this.bySession.values()) n += set.size
    return n
  }

  /**
   * Watches a stream until the returned function is called (when the stream closes). `checkedAt`
   * is when its session was found valid: a notice received since then gets the stream checked at once.
   */
  watch(stream: WatchedStream, checkedAt: number): () => void {
    add(this.bySession, stream.sessionId, stream)
    add(this.byUser, stream.userId, stream)
    const noticed = Math.max(this.recentNotices.get(stream.sessionId) ?? 0, this.recentNotices.get(stream.userId) ?? 0)
    if (noticed >= checkedAt) void this.check([stream]).catch(() => {}) // the periodic check retries
    return () => {
      remove(this.bySession, stream.sessionId, stream)
      remove(this.byUser, stream.userId, stream)
    }
  }

  /** Checks the streams a notice names; closes those no longer allowed. Resolves with the number closed. */
  async noticed(notice: RevocationNotice): Promise<number> {
    const key = notice.sessionId ?? notice.userId!
    const now = Date.now()
    this.recentNotices.delete(key) // re-inserted last, so the map stays in time order for pruning
    this.recentNotices.set(key, now)
    for (const [k, at] of this.recentNotices) {
      if (now - at <= RECENT_NOTICE_MS) break
      this.recentNotices.delete(k)
    }
    const streams = (notice.sessionId ? this.bySession.get(notice.sessionId) : this.byUser.get(notice.userId!)) ?? new Set()
    return this.check([...streams])
  }

  /** Checks every open stream (the safety net behind notices). */
  async checkAll(): Promise<number> {
    const all = [...this.bySession.values()].flatMap((set) => [...set])
    let closed = 0
    for (let i = 0; i < all.length; i += CHECK_CHUNK) closed += await this.check(all.slice(i, i + CHECK_CHUNK))
    return closed
  }

  private async check(streams: WatchedStream[]): Promise<number> {
    if (streams.length === 0) return 0
    const sessionIds = [...new Set(streams.map((s) => s.sessionId))]
    const { rows } = await this.db.query(
      `SELECT s.id, s.user_id, u.role FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = ANY($1::uuid[]) AND s.revoked_at IS NULL AND NOT u.disabled`,
      [sessionIds],
    )
    const open = new Map<string, { userId: string; role: string }>(rows.map((r) => [r.id, { userId: r.user_id, role: r.role }]))
    let closed = 0
    for (const stream of streams) {
      const session = open.get(stream.sessionId)
      const allowed = session !== undefined && session.userId === stream.userId && (stream.ownerId === stream.userId || session.role === 'ADMIN')
      if (!allowed) {
        stream.close()
        closed++
      }
    }
    return closed
  }
}

function add(map: Map<string, Set<WatchedStream>>, key: string, stream: WatchedStream) {
  const set = map.get(key)
  if (set) set.add(stream)
  else map.set(key, new Set([stream]))
}

function remove(map: Map<string, Set<WatchedStream>>, key: string, stream: WatchedStream) {
  const set = map.get(key)
  if (!set) return
  set.delete(stream)
  if (set.size === 0) map.delete(key)
}

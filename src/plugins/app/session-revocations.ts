import fp from 'fastify-plugin'
import { randomUUID } from 'node:crypto'
import { formatNotice, parseNotice, SESSIONS_REVOKED_CHANNEL, SessionStreams, type RevocationNotice, type WatchedStream } from '../../services/auth/session-revocations.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessionRevocations: {
      /** Keeps an open event stream under watch; call the returned function when it closes. */
      watch(stream: WatchedStream, checkedAt: number): () => void
      /** After a session ended (or a user was disabled or demoted): closes the streams concerned here and on every instance. Never throws. */
      revoked(notice: RevocationNotice): Promise<void>
      /** Open streams under watch in this process. */
      readonly size: number
    }
  }
}

/**
 * Ends open event streams as soon as their session ends. The instance where it happened checks its
 * own streams at once and tells the others on the bus; every instance also re-checks all its streams
 * every SESSION_RECHECK_INTERVAL, in case a notice was lost (Redis down at the wrong moment).
 */
export default fp(async (app) => {
  const streams = new SessionStreams(app.pg.pool)
  const instance = randomUUID()
  const closedSome = (why: string) => (closed: number) => {
    if (closed > 0) app.log.info({ closed, why }, 'closed event streams of ended sessions')
  }
  const failed = (err: unknown) => app.log.warn({ err: (err as Error).message }, 'could not check open event streams; will retry')

  await app.bus.listen('gateway:*', (channel, raw) => {
    if (channel !== SESSIONS_REVOKED_CHANNEL) return
    const notice = parseNotice(raw)
    if (!notice || notice.from === instance) return // ours: already checked here when it was sent
    streams.noticed(notice.sessionId ? { sessionId: notice.sessionId } : { userId: notice.userId! }).then(closedSome('notice'), failed)
  })

  const timer = setInterval(() => {
    if (streams.size > 0) streams.checkAll().then(closedSome('periodic check'), failed)
  }, app.config.auth.sessionRecheckMs)
  timer.unref()
  app.addHook('onClose', async () => clearInterval(timer))

  app.decorate('sessionRevocations', {
    watch: (stream: WatchedStream, checkedAt: number) => streams.watch(stream, checkedAt),
    async revoked(notice: RevocationNotice) {
      const local = streams.noticed(notice).then(closedSome('revoked here'), failed)
      const remote = app.bus.publish(SESSIONS_REVOKED_CHANNEL, formatNotice(notice, instance)).catch((err: unknown) =>
        app.log.warn({ err: (err as Error).message }, 'could not tell other instances that a session ended; their periodic check will'))
      await Promise.all([local, remote])
    },
    get size() {
      return streams.size
    },
  })
}, { name: 'session-revocations', dependencies: ['config', 'postgres', 'bus'] })

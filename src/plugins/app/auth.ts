import fp from 'fastify-plugin'
import jwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { activeSessions, type Identity } from '../../services/auth/accounts.js'
import { BatchLoader } from '../../db/batch-loader.js'
import { forbidden, tooManyRequests, unauthorized } from '../../http-errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** preHandler: a valid access token (Bearer header or session cookie) of an active session. */
    authenticate: (request: FastifyRequest) => Promise<void>
    /** preHandler, after authenticate: only admins pass. */
    requireAdmin: (request: FastifyRequest) => Promise<void>
    /** For event streams: as authenticate, or a stream token scoped to `jobId` in `?token=`. */
    authenticateStream: (request: FastifyRequest, jobId: string) => Promise<Identity>
    tokens: {
      access(identity: Identity): string
      stream(identity: Identity, jobId: string): string
    }
    sessionCookies: {
      set(reply: FastifyReply, accessToken: string, refreshToken: string): void
      clear(reply: FastifyReply): void
    }
  }
  interface FastifyRequest {
    identity: Identity
    /** The user id of the request's verified token, before its session is checked (the per-user rate limit's key). */
    tokenSubject: string
  }
}

export const SESSION_COOKIE = 'nexa_session'
export const REFRESH_COOKIE = 'nexa_refresh'

interface TokenClaims {
  sub: string
  sid: string
  typ: 'access' | 'stream'
  job?: string
}

export default fp(async (app) => {
  const { auth } = app.config
  await app.register(jwt, {
    secret: auth.jwtSecret,
    // Pinned: a token is HS256 with an expiry, or it is nothing.
    sign: { algorithm: 'HS256' },
    verify: { algorithms: ['HS256'], requiredClaims: ['exp', 'sub', 'sid', 'typ'] },
  })
  app.decorateRequest('identity', null as unknown as Identity)
  app.decorateRequest('tokenSubject', '')

  const seconds = (ms: number) => Math.floor(ms / 1000)
  app.decorate('tokens', {
    access: (identity: Identity) =>
      app.jwt.sign({ sub: identity.id, sid: identity.sessionId, typ: 'access' } satisfies TokenClaims, { expiresIn: seconds(auth.accessTokenTtlMs) }),
    // Goes in a URL (EventSource cannot send headers), so it opens one job's stream for a few minutes and nothing else.
    stream: (identity: Identity, jobId: string) =>
      app.jwt.sign({ sub: identity.id, sid: identity.sessionId, typ: 'stream', job: jobId } satisfies TokenClaims, { expiresIn: seconds(auth.streamTokenTtlMs) }),
  })

  const cookieBase = { httpOnly: true, secure: auth.cookieSecure, sameSite: 'lax' as const }
  app.decorate('sessionCookies', {
    set(reply: FastifyReply, accessToken: string, refreshToken: string) {
      reply.setCookie(SESSION_COOKIE, accessToken, { ...cookieBase, path: '/', maxAge: seconds(auth.accessTokenTtlMs) })
      reply.setCookie(REFRESH_COOKIE, refreshToken, { ...cookieBase, sameSite: 'strict', path: '/auth', maxAge: seconds(auth.refreshTokenTtlMs) })
    },
    clear(reply: FastifyReply) {
      reply.clearCookie(SESSION_COOKIE, { ...cookieBase, path: '/' })
      reply.clearCookie(REFRESH_COOKIE, { ...cookieBase, sameSite: 'strict', path: '/auth' })
    },
  })

  // Claims are checked for shape too, not only for signature: ids reach SQL as uuids.
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
  const isId = (value: unknown): value is string => typeof value === 'string' && UUID.test(value)

  function verify(token: string, typ: TokenClaims['typ']): TokenClaims | undefined {
    try {
      const claims = app.jwt.verify<TokenClaims>(token)
      if (claims.typ !== typ || !isId(claims.sub) || !isId(claims.sid) || (typ === 'stream' && !isId(claims.job))) return undefined
      return claims
    } catch {
      return undefined
    }
  }

  function bearerOrCookie(request: FastifyRequest): string | undefined {
    const header = request.headers.authorization
    // The scheme name is case-insensitive (RFC 7235): "bearer x" is as good as "Bearer x".
    if (header) return /^Bearer ([A-Za-z0-9\-_.]+)$/i.exec(header)?.[1] ?? ''
    return request.cookies[SESSION_COOKIE]
  }

  // Requests per user, whatever the client address (a user spread over many addresses, or one
  // address shared by many users behind a NAT, is limited fairly); counted with the per-address limit.
  const perUser = app.createRateLimit({
    max: app.config.rateLimit.userMax,
    timeWindow: app.config.rateLimit.windowMs,
    keyGenerator: (request) => `user:${request.tokenSubject}`,
  })

  // Every request checks that the session is still open and the user enabled: logout and
  // disabling take effect at once, not when the access token expires. The checks of requests
  // arriving together share one query. The per-user count (keyed by the verified token's user)
  // goes to Redis meanwhile; it only speaks for an open session.
  const sessions = new BatchLoader((ids: string[]) => activeSessions(app.pg.pool, ids))
  async function identityFrom(request: FastifyRequest, claims: TokenClaims | undefined): Promise<Identity> {
    if (!claims) throw unauthorized('Missing, invalid or expired token')
    request.tokenSubject = claims.sub
    const [session, limit] = await Promise.all([sessions.load(claims.sid), perUser(request)])
    const identity = session?.id === claims.sub ? session : undefined
    if (!identity) throw unauthorized('Session ended or account disabled')
    request.identity = identity
    if (!limit.isAllowed && limit.isExceeded) throw tooManyRequests(limit.ttlInSeconds, 'Too many requests for this account; slow down')
    return identity
  }

  // Whatever is answered to a signed-in user (JSON, CSV exports, errors after sign-in) is theirs
  // alone: no browser or shared cache may store it. (Event streams set their own headers and are
  // hijacked, so this hook does not run for them.)
  app.addHook('onSend', async (request, reply) => {
    if (request.identity) reply.header('cache-control', 'no-store')
  })

  app.decorate('authenticate', async (request: FastifyRequest) => {
    const token = bearerOrCookie(request)
    request.identity = await identityFrom(request, token ? verify(token, 'access') : undefined)
  })

  app.decorate('requireAdmin', async (request: FastifyRequest) => {
    if (request.identity?.role !== 'ADMIN') throw forbidden('Administrators only')
  })

  app.decorate('authenticateStream', async (request: FastifyRequest, jobId: string) => {
    const queryToken = (request.query as { token?: string }).token
    if (queryToken) {
      const claims = verify(queryToken, 'stream')
      return identityFrom(request, claims?.job === jobId ? claims : undefined)
    }
    const token = bearerOrCookie(request)
    return identityFrom(request, token ? verify(token, 'access') : undefined)
  })
}, { name: 'auth', dependencies: ['config', 'postgres', 'rate-limit'] })

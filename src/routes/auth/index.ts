import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { findUserForLogin, normalizeEmail, openSession, revokeSession, rotateRefreshToken, sessionOfRefreshToken, signedInFrom, type Identity } from '../../services/auth/accounts.js'
import { createLoginThrottle } from '../../services/auth/login-throttle.js'
import { decoyPasswordHash, verifyPassword } from '../../services/auth/passwords.js'
import { HttpError, tooManyRequests, unauthorized } from '../../http-errors.js'
import { LoginBody, RefreshBody, TokenResponse, Role } from '../../schemas/auth.js'
import { errorResponses, Uuid } from '../../schemas/common.js'
import { REFRESH_COOKIE } from '../../plugins/app/auth.js'

const auth: FastifyPluginAsyncTypebox = async (app) => {
  const { config } = app
  const pool = app.pg.pool
  // Known-good addresses: those the account signed in from while a refresh token of then may still live.
  const loginThrottle = createLoginThrottle({
    ...config.auth.login,
    redis: app.redis,
    isKnownAddress: (email, address) => signedInFrom(pool, email, address, config.auth.refreshTokenTtlMs),
  })

  // Browsers refresh and sign out with the cookie alone, sending no body: validate that as `{}`.
  const noBodyIsEmpty = async (request: FastifyRequest) => { request.body ??= {} }

  const issue = (identity: Identity, refreshToken: string) => ({
    access_token: app.tokens.access(identity),
    token_type: 'Bearer' as const,
    expires_in: Math.floor(config.auth.accessTokenTtlMs / 1000),
    refresh_token: refreshToken,
    user: { id: identity.id, email: identity.email, role: identity.role },
  })

  app.post('/auth/login', {
    schema: {
      tags: ['auth'], summary: 'Sign in with email and password', security: [],
      body: LoginBody,
      response: { 200: TokenResponse, ...errorResponses(400, 401, 429) },
    },
  }, async (request, reply) => {
    const attempt = loginThrottle.attempt(request.ip, normalizeEmail(request.body.email))
    const refusal = await attempt.admit()
    if (refusal) {
      request.log.info({ throttled: refusal.reason }, 'sign-in refused: too many failures')
      throw tooManyRequests(refusal.retryAfterMs / 1000, 'Too many failed sign-in attempts; try again later')
    }
    const user = await findUserForLogin(pool, request.body.email)
    // Unknown email, wrong password and disabled account cost the same and answer the same.
    const passwordOk = await verifyPassword(request.body.password, user?.password_hash ?? (await decoyPasswordHash()))
    if (!user || !passwordOk || user.disabled) {
      await attempt.failed()
      throw new HttpError(401, 'invalid_credentials', 'Email or password is incorrect')
    }
    const { sessionId, refreshToken } = await openSession(pool, user.id, request.ip, config.auth.refreshTokenTtlMs)
    await attempt.succeeded()
    const tokens = issue({ id: user.id, email: user.email, role: user.role, sessionId }, refreshToken)
    app.sessionCookies.set(reply, tokens.access_token, refreshToken)
    // Token responses must never be stored by a browser or a proxy cache (RFC 6749, 5.1).
    reply.header('cache-control', 'no-store')
    request.log.info({ userId: user.id }, 'signed in')
    return tokens
  })

  app.post('/auth/refresh', {
    schema: {
      tags: ['auth'], summary: 'Exchange a refresh token (body or cookie) for new tokens; the old one stops working', security: [],
      body: RefreshBody,
      response: { 200: TokenResponse, ...errorResponses(400, 401) },
    },
    preValidation: noBodyIsEmpty,
  }, async (request, reply) => {
    const token = request.body.refresh_token ?? request.cookies[REFRESH_COOKIE]
    if (!token) throw unauthorized('No refresh token')
    const rotation = await rotateRefreshToken(pool, token, config.auth.refreshTokenTtlMs)
    if (!rotation.ok) {
      if (rotation.reason === 'reused') {
        request.log.warn('refresh token reused: session revoked')
        await app.sessionRevocations.revoked({ sessionId: rotation.sessionId })
      }
      app.sessionCookies.clear(reply)
      throw new HttpError(401, 'invalid_refresh_token', rotation.reason === 'reused'
        ? 'This refresh token was already used; the session has been ended for safety. Sign in again'
        : 'Refresh token is invalid or expired; sign in again')
    }
    const tokens = issue(rotation.identity, rotation.refreshToken)
    app.sessionCookies.set(reply, tokens.access_token, rotation.refreshToken)
    reply.header('cache-control', 'no-store')
    return tokens
  })

  app.post('/auth/logout', {
    schema: {
      tags: ['auth'], summary: 'End the session of the given refresh token, or of the access token used',
      body: RefreshBody,
      response: { 204: Type.Null(), ...errorResponses(400, 401) },
    },
    preValidation: noBodyIsEmpty,
  }, async (request, reply) => {
    const refresh = request.body.refresh_token ?? request.cookies[REFRESH_COOKIE]
    let sessionId = refresh ? await sessionOfRefreshToken(pool, refresh) : undefined
    if (!sessionId) {
      await app.authenticate(request)
      sessionId = request.identity.sessionId
    }
    await revokeSession(pool, sessionId, 'logout')
    await app.sessionRevocations.revoked({ sessionId })
    app.sessionCookies.clear(reply)
    return reply.code(204).send(null)
  })

  app.get('/auth/me', {
    onRequest: app.authenticate,
    schema: {
      tags: ['auth'], summary: 'The signed-in user',
      response: { 200: Type.Object({ id: Uuid, email: Type.String(), role: Role }), ...errorResponses(401) },
    },
  }, async (request) => ({ id: request.identity.id, email: request.identity.email, role: request.identity.role }))
}

export default auth

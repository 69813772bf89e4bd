import fp from 'fastify-plugin'
import { STATUS_CODES } from 'node:http'
import type { FastifyError } from 'fastify'
import { HttpError } from '../../http-errors.js'
import { isDatabaseBusy, isDatabaseUnavailable } from '../../db/errors.js'

/**
 * One error shape for every failure: {statusCode, error, code, message}. Clients never see a
 * stack trace or SQL; unexpected errors are logged in full and answered as a plain 500.
 */
const FASTIFY_CODES: Record<number, string> = { 413: 'payload_too_large', 415: 'unsupported_media_type', 404: 'route_not_found' }

export default fp(async (app) => {
  app.setErrorHandler((err: FastifyError | HttpError, request, reply) => {
    const body = (statusCode: number, code: string, message: string, extra: Record<string, unknown> = {}) =>
      reply.code(statusCode).send({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', code, message, ...extra })

    if (err instanceof HttpError) {
      reply.headers(err.headers)
      return body(err.statusCode, err.code, err.message, err.details)
    }
    if ('validation' in err && err.validation) {
      return body(400, 'invalid_request', `${err.validationContext ?? 'request'} ${err.message.replace(/^(body|querystring|params|headers)[/ ]?/, '')}`.trim())
    }
    // Every connection busy: overload, unless an outage is already known (a frozen server holds them all).
    if (isDatabaseBusy(err) && request.server.database?.available !== false) {
      request.server.metrics?.databaseBusy.inc()
      reply.header('retry-after', '1')
      return body(503, 'database_busy', 'The database is busy; try again in a moment')
    }
    if (isDatabaseUnavailable(err) || isDatabaseBusy(err)) {
      request.log.warn({ err: err.message }, 'database unavailable')
      request.server.database?.markUnavailable()
      request.server.metrics?.databaseUnavailable.inc({ where: 'request' })
      reply.header('retry-after', '5')
      return body(503, 'database_unavailable', 'The database is unavailable; try again shortly')
    }
    const status = (err as FastifyError).statusCode
    if (status && status >= 400 && status < 500) {
      // Fastify's own refusals (bad JSON, unsupported type, body too large) in our vocabulary.
      const code = status === 400 ? 'invalid_request' : (FASTIFY_CODES[status] ?? 'bad_request')
      return body(status, code, err.message)
    }
    request.log.error({ err }, 'unhandled error')
    return body(500, 'internal_error', 'Internal server error')
  })

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ statusCode: 404, error: 'Not Found', code: 'route_not_found', message: `No route ${request.method} ${request.url.split('?')[0]}` })
  })
}, { name: 'error-handler' })

import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { randomUUID } from 'node:crypto'
import type { Config } from './config.js'
import type { MessageBus } from './services/bus/message-bus.js'
import { ErrorResponse } from './schemas/common.js'
import { BatchItem, Classification, Job, NcmCheckSchema, UnmatchedAnswer } from './schemas/jobs.js'
import { User } from './schemas/auth.js'
import { NcmEntry, NcmSearchHit } from './schemas/ncm.js'
import configPlugin from './plugins/app/config.js'
import errorHandler from './plugins/app/error-handler.js'
import validation from './plugins/app/validation.js'
import postgres from './plugins/external/postgres.js'
import security from './plugins/external/security.js'
import swagger from './plugins/external/swagger.js'
import rateLimit from './plugins/external/rate-limit.js'
import bus from './plugins/app/bus.js'
import auth from './plugins/app/auth.js'
import sessionRevocations from './plugins/app/session-revocations.js'
import { requestForLog } from './services/auth/log-redaction.js'
import jobs from './plugins/app/jobs.js'
import metrics from './plugins/app/metrics.js'
import healthRoutes from './routes/health/index.js'
import authRoutes from './routes/auth/index.js'
import userRoutes from './routes/users/index.js'
import classificationRoutes from './routes/classifications/index.js'
import jobRoutes from './routes/jobs/index.js'
import jobEventRoutes from './routes/jobs/events.js'
import jobResultRoutes from './routes/jobs/results.js'
import documentRoutes from './routes/documents/index.js'
import documentsPlugin from './plugins/app/documents.js'
import partnumberRoutes from './routes/partnumbers/index.js'
import ncmRoutes from './routes/ncm/index.js'
import consolePlugin from './plugins/app/console.js'

export interface AppOptions {
  config: Config
  /** A bus to share with an in-process simulator (development); by default one is made from the config. */
  bus?: MessageBus
  logger?: FastifyServerOptions['logger']
}

// Never written to logs: credentials and tokens, wherever they appear.
const REDACT = [
  'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie', '*.headers["set-cookie"]',
  'password', 'refresh_token', 'access_token', 'token', '*.password', '*.refresh_token', '*.access_token', '*.token',
]

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options
  const app = Fastify({
    // Redaction and the request serializer (no stream token from a URL) apply to any logger options given.
    logger: options.logger === false ? false : { level: config.logLevel, ...(typeof options.logger === 'object' ? options.logger : {}), redact: { paths: REDACT, censor: '[redacted]' }, serializers: { req: requestForLog } },
    trustProxy: config.trustProxy,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID()
    },
    requestIdHeader: false,
    bodyLimit: 1_048_576,
    return503OnClosing: true,
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
  })

  for (const schema of [ErrorResponse, NcmCheckSchema, Classification, BatchItem, UnmatchedAnswer, Job, User, NcmEntry, NcmSearchHit]) app.addSchema(schema)

  await app.register(configPlugin, { config })
  await app.register(errorHandler)
  await app.register(validation)
  await app.register(postgres)
  await app.register(bus, { bus: options.bus })
  await app.register(security)
  await app.register(swagger)
  await app.register(rateLimit)
  await app.register(auth)
  await app.register(sessionRevocations)
  await app.register(metrics)
  await app.register(jobs)
  await app.register(documentsPlugin)

  await app.register(healthRoutes)
  await app.register(authRoutes)
  await app.register(userRoutes)
  await app.register(classificationRoutes)
  await app.register(jobRoutes)
  await app.register(jobEventRoutes)
  await app.register(jobResultRoutes)
  await app.register(documentRoutes)
  await app.register(partnumberRoutes)
  await app.register(ncmRoutes)
  await app.register(consolePlugin)
  return app
}

import fp from 'fastify-plugin'
import helmet from '@fastify/helmet'
import cors from '@fastify/cors'
import cookie from '@fastify/cookie'

/** Security headers, the CORS allowlist (credentials only for listed origins) and cookie parsing. */
export default fp(async (app) => {
  await app.register(helmet, {
    // The API serves JSON and event streams; /docs (Swagger UI) needs its inline assets.
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'", "'unsafe-inline'"], imgSrc: ["'self'", 'data:'] } },
  })
  const allowed = new Set(app.config.corsOrigins)
  await app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    credentials: true,
    methods: ['GET', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'last-event-id'],
    exposedHeaders: ['location', 'retry-after'],
    maxAge: 600,
  })
  await app.register(cookie)
}, { name: 'security', dependencies: ['config'] })

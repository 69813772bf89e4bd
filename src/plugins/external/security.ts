import fp from 'fastify-plugin'
import helmet from 'helmet'
import type { IncomingMessage, ServerResponse } from 'node:http'
import cors from '@fastify/cors'
import cookie from '@fastify/cookie'

/** Security headers, the CORS allowlist (credentials only for listed origins) and cookie parsing. */
export default fp(async (app) => {
  // Helmet's headers are the same for every answer: computed once, set by one hook (the Fastify
  // plugin would build Helmet's middleware, CSP parsing included, for every request).
  const securityHeaders = helmetHeaders({
    // The API serves JSON and event streams; /docs (Swagger UI) needs its inline assets.
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], scriptSrc: ["'self'"], styleSrc: ["'self'", "'unsafe-inline'"], imgSrc: ["'self'", 'data:'] } },
  })
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(securityHeaders)
    done()
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

/** The headers Helmet sets with these options, read once off a response that only records them. */
function helmetHeaders(options: Parameters<typeof helmet>[0]): Record<string, string> {
  const headers: Record<string, string> = {}
  const recorder = {
    setHeader: (name: string, value: string) => { headers[name.toLowerCase()] = String(value) },
    removeHeader: (name: string) => { delete headers[name.toLowerCase()] },
  }
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => { if (err) throw err })
  return headers
}

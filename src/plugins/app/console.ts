import type { FastifyInstance } from 'fastify'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'

// src/console in development (tsx), dist/console once built (`npm run build` copies it there).
const CONSOLE_ROOT = fileURLToPath(new URL('../../console/', import.meta.url))

// The console's own policy, stricter than the API-wide one in plugins/external/security.ts (which
// also serves Swagger UI): scripts, styles, images and connections (fetch, EventSource) all from
// this origin only, no inline anything, no framing.
const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/**
 * The browser console at `/`: static files (HTML, CSS, ES modules). One route per file that exists
 * at start (no wildcard), so it never shadows an API route and an unknown path stays a JSON 404.
 * Not wrapped in fastify-plugin: its hook applies to these routes only.
 */
export default async function consolePlugin(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: CONSOLE_ROOT,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    // Revalidated on every load (ETag): a deploy shows at once, an unchanged file costs a 304.
    cacheControl: true,
    maxAge: 0,
    schemaHide: true,
  })
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', CONSOLE_CSP)
  })
}

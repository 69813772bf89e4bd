import type { FastifyRequest } from 'fastify'

// Query parameters whose values are credentials: the job-scoped stream token travels in the URL
// of an event stream (EventSource cannot send headers), and URLs are logged.
const SECRET_PARAMS = new Set(['token', 'access_token', 'refresh_token', 'password'])

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' ')).toLowerCase()
  } catch {
    return name.toLowerCase()
  }
}

/** The URL with the value of every credential parameter replaced, however its name is encoded. */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?')
  if (queryStart < 0) return url
  const query = url.slice(queryStart + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    const name = eq < 0 ? pair : pair.slice(0, eq)
    return SECRET_PARAMS.has(decodedName(name)) ? `${name}=[redacted]` : pair
  })
  return `${url.slice(0, queryStart)}?${query.join('&')}`
}

/** Fastify's own request log fields, with credentials taken out of the URL. */
export function requestForLog(request: FastifyRequest) {
  return {
    method: request.method,
    url: typeof request.url === 'string' ? redactUrl(request.url) : undefined,
    version: [request.headers?.['accept-version']].flat()[0],
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  }
}

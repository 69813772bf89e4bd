import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BATCH_ENDPOINT, SINGLE_ENDPOINT } from './contract.js'
import type { RequestLog } from './request-log.js'
import type { BatchRequest, RealServerJobs, SingleRequest } from './real-server-jobs.js'

export interface RealServerRoutesOptions {
  requests: RequestLog
  jobs: RealServerJobs
}

// app/routes.py of the real server (Flask 3, Werkzeug 3), answer for answer. Registered in its own
// plugin context: the body parsers below apply to these two routes only.
export async function realServerRoutes(app: FastifyInstance, { requests, jobs }: RealServerRoutesOptions): Promise<void> {
  // request.get_json() decides by the Content-Type itself: every body arrives here as text.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body))

  // process_single_partnumber: 400 for a payload pydantic refuses.
  app.post(SINGLE_ENDPOINT, async (request, reply) => {
    const body = readJson(request, reply)
    if (body === NO_BODY) return reply
    requests.record(SINGLE_ENDPOINT, body)
    if (!isSingleRequest(body)) return flaskJson(reply, 400, { error: 'payload inválido' })
    return start(reply, (jobId) => jobs.single(body, jobId), body.progress_channel)
  })

  // process_batch: a payload pydantic refuses gets `return jsonify(...)` without a status: 200.
  app.post(BATCH_ENDPOINT, async (request, reply) => {
    const body = readJson(request, reply)
    if (body === NO_BODY) return reply
    requests.record(BATCH_ENDPOINT, body)
    if (!isBatchRequest(body)) return flaskJson(reply, 200, { error: 'payload inválido' })
    return start(reply, (jobId) => jobs.batch(body, jobId), body.progress_channel)
  })

  /**
   * The route starts the job's thread, then answers 202. What the thread publishes before its
   * first wait is published here before the answer: the real order is a race between the
   * thread and the answer, and this is the side of it a gateway has to survive.
   */
  async function start(reply: FastifyReply, job: (jobId: string) => Promise<void>, channel: string) {
    const jobId = `job-${randomUUID()}`
    await jobs.run(() => job(jobId), channel).firstWait
    return flaskJson(reply, 202, { job_id: jobId })
  }
}

const NO_BODY = Symbol('answered already')

/** Werkzeug's Request.get_json(): 415 unless the body claims JSON, 400 when it is not JSON. */
function readJson(request: FastifyRequest, reply: FastifyReply): unknown {
  const mimetype = String(request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  const isJson = mimetype === 'application/json' || (mimetype.startsWith('application/') && mimetype.endsWith('+json'))
  if (!isJson) {
    werkzeugError(reply, 415, 'Unsupported Media Type', 'Did not attempt to load JSON data because the request Content-Type was not &#39;application/json&#39;.')
    return NO_BODY
  }
  try {
    return JSON.parse(typeof request.body === 'string' ? request.body : '')
  } catch {
    // Flask turns the decoding error into a plain BadRequest outside debug mode.
    werkzeugError(reply, 400, 'Bad Request', 'The browser (or proxy) sent a request that this server could not understand.')
    return NO_BODY
  }
}

/** Werkzeug's HTML error page. */
function werkzeugError(reply: FastifyReply, status: number, name: string, description: string): void {
  reply.code(status).type('text/html; charset=utf-8')
    .send(`<!doctype html>\n<html lang=en>\n<title>${status} ${name}</title>\n<h1>${name}</h1>\n<p>${description}</p>\n`)
}

/** Flask's jsonify: compact JSON, non-ASCII escaped, a final newline. */
function flaskJson(reply: FastifyReply, status: number, body: object) {
  const text = JSON.stringify(body).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return reply.code(status).header('content-type', 'application/json').send(Buffer.from(`${text}\n`))
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const optionalText = (v: unknown) => v === undefined || v === null || typeof v === 'string'

/** schemas/api_schemas.py SingleClassificationRequest (pydantic, lax mode: no number is taken for a string). */
function isSingleRequest(body: unknown): body is SingleRequest {
  return isObject(body) && typeof body.progress_channel === 'string' && typeof body.partnumber === 'string'
    && optionalText(body.description) && optionalText(body.manufacturer) && optionalText(body.supplier)
}

/** schemas/api_schemas.py BatchClassificationRequest: `partnumbers: Dict[str, Any]`, so any values, none at all included. */
function isBatchRequest(body: unknown): body is BatchRequest {
  return isObject(body) && typeof body.progress_channel === 'string' && isObject(body.partnumbers)
}

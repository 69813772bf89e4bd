import { Agent, request, errors } from 'undici'

export interface AiClientOptions {
  baseUrl: string
  connectTimeoutMs: number
  requestTimeoutMs: number
  maxRetries: number
  retryBaseDelayMs: number
}

export interface SinglePayload {
  progress_channel: string
  partnumber: string
  description: string | null
  manufacturer: string | null
  supplier: string | null
}

export interface BatchPayload {
  progress_channel: string
  partnumbers: Record<string, Omit<SinglePayload, 'progress_channel'>>
}

/** The AI server did not start the job; `message` says why in words fit for the job's error. */
export class AiStartError extends Error {
  override name = 'AiStartError'
}

export interface AiClient {
  startSingle(payload: SinglePayload): Promise<string>
  startBatch(payload: BatchPayload): Promise<string>
  close(): Promise<void>
}

const RETRYABLE_STATUS = new Set([502, 503, 504])
// Errors raised before the request could reach the server: safe to send again.
const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET'])

export function createAiClient(options: AiClientOptions, sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))): AiClient {
  const dispatcher = new Agent({
    connect: { timeout: options.connectTimeoutMs },
    headersTimeout: options.requestTimeoutMs,
    bodyTimeout: options.requestTimeoutMs,
    keepAliveTimeout: 10_000,
  })

  async function attempt(path: string, payload: unknown): Promise<{ retry: boolean; error?: string; jobId?: string }> {
    let response
    try {
      response = await request(`${options.baseUrl}${path}`, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(options.requestTimeoutMs),
      })
    } catch (err) {
      const code = (err as { code?: string }).code ?? ''
      if (err instanceof errors.HeadersTimeoutError || (err as Error).name === 'TimeoutError') {
        return { retry: false, error: `AI server did not answer within ${options.requestTimeoutMs} ms` }
      }
      return { retry: RETRYABLE_CODES.has(code), error: `AI server unreachable (${code || (err as Error).message})` }
    }
    let body: unknown
    try {
      const text = await response.body.text()
      body = text.length <= 65_536 ? JSON.parse(text) : undefined
    } catch {
      body = undefined
    }
    const jobId = (body as { job_id?: unknown } | undefined)?.job_id
    const serverError = (body as { error?: unknown } | undefined)?.error
    const detail = typeof serverError === 'string' ? `: ${serverError.slice(0, 500)}` : ''
    if (response.statusCode >= 200 && response.statusCode < 300) {
      if (typeof jobId === 'string' && jobId.length > 0 && jobId.length <= 200) return { retry: false, jobId }
      return { retry: false, error: `AI server did not start the job${detail || ' (answer without job_id)'}` }
    }
    return {
      retry: RETRYABLE_STATUS.has(response.statusCode),
      error: `AI server refused the job with status ${response.statusCode}${detail}`,
    }
  }

  async function start(path: string, payload: unknown): Promise<string> {
    for (let retry = 0; ; retry++) {
      const outcome = await attempt(path, payload)
      if (outcome.jobId) return outcome.jobId
      if (!outcome.retry || retry >= options.maxRetries) throw new AiStartError(outcome.error)
      // Exponential backoff with full jitter, so that many gateways do not retry in step.
      await sleep(Math.random() * options.retryBaseDelayMs * 2 ** retry)
    }
  }

  return {
    startSingle: (payload) => start('/process/single_partnumber', payload),
    startBatch: (payload) => start('/process/batch_partnumbers', payload),
    close: () => dispatcher.close(),
  }
}

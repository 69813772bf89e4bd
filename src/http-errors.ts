/** An error whose status and code reach the client as they are (see the app's error handler). */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly details?: Record<string, unknown>,
  ) {
    super(message)
  }
}

export const notFound = (what: string) => new HttpError(404, `${what}_not_found`, `${what.replace(/_/g, ' ')} not found`)
export const unauthorized = (message = 'Authentication required') => new HttpError(401, 'unauthorized', message)
export const forbidden = (message = 'Not allowed') => new HttpError(403, 'forbidden', message)
export const conflict = (code: string, message: string) => new HttpError(409, code, message)
export const tooManyRequests = (retryAfterSeconds: number, message: string, code = 'too_many_requests') =>
  new HttpError(429, code, message, { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) })

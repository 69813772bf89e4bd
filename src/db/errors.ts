const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', // admin shutdown, crash shutdown, cannot connect now
  '08000', '08001', '08003', '08004', '08006', // connection exceptions
  '53300', // too many connections
])
const UNAVAILABLE_MESSAGES = /Connection terminated|connection error|Query read timeout|the database system is (starting up|shutting down)/i

/**
 * True when the error says PostgreSQL cannot be reached right now (as opposed to a bad query).
 * A busy pool (isDatabaseBusy) is not an outage.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false
  const { code, message } = err as { code?: unknown; message?: unknown }
  return (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) || (typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message))
}

/**
 * True when the query waited longer than the pool's connection timeout for one of its
 * connections, all alive and busy: overload, not an outage (pg-pool's pending-queue timeout; a new
 * connection that cannot be made fails with "Connection terminated due to connection timeout").
 */
export function isDatabaseBusy(err: unknown): boolean {
  return err instanceof Error && err.message === 'timeout exceeded when trying to connect'
}

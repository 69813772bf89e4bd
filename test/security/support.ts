import { createHmac } from 'node:crypto'
import type { Stack } from '../helpers/stack.js'

// Small helpers shared by the security tests.

export type ApiResponse = Awaited<ReturnType<Stack['api']>>

export const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000'

export { NO_LOGIN_LIMITS } from '../helpers/stack.js'

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
export const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, any>
export const nowSeconds = () => Math.floor(Date.now() / 1000)

/** An HS256 JWT signed here (to forge or re-sign tokens with chosen claims). */
export function signJwt(claims: Record<string, unknown>, secret: string): string {
  const data = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`
  return `${data}.${createHmac('sha256', secret).update(data).digest('base64url')}`
}

/** The stream token of a job's events_url. */
export const streamTokenOf = (eventsUrl: string) => new URL(eventsUrl, 'http://x').searchParams.get('token')!

/** Sign-in giving both tokens. */
export async function signIn(stack: Stack, email: string, password: string): Promise<{ access_token: string; refresh_token: string; user: { id: string; role: string } }> {
  const res = await stack.api('POST', '/auth/login', { body: { email, password } })
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

/** Anything that looks like a stored secret: a scrypt hash, a field named after one, or a token hash. */
export const SECRET_SHAPES = /scrypt\$|password_hash|"password"|token_hash|refresh_tokens/

/** Resolves true if the promise settles within `ms`, false otherwise. */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), ms) })
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout])
  } finally {
    clearTimeout(timer)
  }
}

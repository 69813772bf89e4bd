import type { Redis } from 'ioredis'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible'

/**
 * Sign-in throttling that slows an attacker without locking the owner out. Only failures count
 * (successes never do), along three lines:
 *  - per (address, email) pair: the first failure is free (a typo); each further one in a row
 *    pauses the pair for twice as long as the one before (backoffBaseMs, 2x, 4x ... at most
 *    windowMs); a success resets the pair;
 *  - per address, whatever the emails (password spraying): maxFailuresPerAddress per window;
 *  - per email, from addresses that are not known-good for the account (a distributed attack on
 *    one account): maxFailuresPerEmail per window. A known-good address, one the account signed in
 *    from recently, is exempt: the owner keeps signing in from there during such an attack.
 * An unknown email is throttled like a real one, so the answers cannot tell them apart.
 *
 * Counters live in Redis when there is one (every instance counts together), else in memory.
 * During a Redis outage the counting goes on in this instance's memory (the limiters' insurance):
 * as with the project's other limits (skipOnError) nobody is refused because Redis is down, and
 * unlike a skipped count the gates do not open either.
 */
export interface LoginThrottleOptions {
  maxFailuresPerAddress: number
  maxFailuresPerEmail: number
  backoffBaseMs: number
  windowMs: number
  redis?: Redis
  /** Whether the account of `email` signed in from `address` recently. */
  isKnownAddress(email: string, address: string): Promise<boolean>
}

export type Refusal = { retryAfterMs: number; reason: 'pair paused' | 'address' | 'email' }

export interface SignInAttempt {
  /** Before the password is checked: a refusal, or undefined to go on. Counts the attempt as failed until it succeeds. */
  admit(): Promise<Refusal | undefined>
  failed(): Promise<void>
  succeeded(): Promise<void>
}

export function createLoginThrottle(options: LoginThrottleOptions): { attempt(address: string, email: string): SignInAttempt } {
  const windowSeconds = Math.ceil(options.windowMs / 1000)
  const counter = (name: string, points: number): RateLimiterAbstract => {
    const settings = { keyPrefix: `nexa-login:${name}`, points, duration: windowSeconds }
    const memory = new RateLimiterMemory(settings)
    if (!options.redis) return memory
    return new RateLimiterRedis({ ...settings, storeClient: options.redis, rejectIfRedisNotReady: true, insuranceLimiter: memory })
  }
  const failuresByPair = counter('pair', 0) // a count only: penalty() never refuses
  const pausedPairs = counter('paused', 0) // a key that exists while the pair is paused
  const failuresByAddress = counter('address', options.maxFailuresPerAddress)
  const failuresByEmail = counter('email', options.maxFailuresPerEmail)

  /** consume(), with "over the limit" as a refusal rather than a rejection. */
  async function take(limiter: RateLimiterAbstract, key: string): Promise<number | undefined> {
    try {
      await limiter.consume(key)
      return undefined
    } catch (outcome) {
      if (outcome instanceof RateLimiterRes) return outcome.msBeforeNext
      throw outcome
    }
  }

  return {
    attempt(address, email) {
      const pair = `${address}/${email}`
      let countedForEmail = false
      return {
        async admit() {
          const paused = await pausedPairs.get(pair)
          if (paused) return { retryAfterMs: paused.msBeforeNext, reason: 'pair paused' }
          // Counted before the password is checked, so that a burst of parallel attempts cannot all
          // pass a check made before any of them failed; a success gives the counts back.
          const known = await options.isKnownAddress(email, address)
          const addressWait = await take(failuresByAddress, address)
          if (addressWait !== undefined) return { retryAfterMs: addressWait, reason: 'address' }
          if (known) return undefined
          const emailWait = await take(failuresByEmail, email)
          if (emailWait !== undefined) {
            await failuresByAddress.reward(address)
            return { retryAfterMs: emailWait, reason: 'email' }
          }
          countedForEmail = true
          return undefined
        },
        async failed() {
          const { consumedPoints: failuresInARow } = await failuresByPair.penalty(pair)
          if (failuresInARow < 2) return
          const pauseSeconds = Math.ceil(Math.min(options.backoffBaseMs * 2 ** (failuresInARow - 2), options.windowMs) / 1000)
          if (pauseSeconds > 0) await pausedPairs.block(pair, pauseSeconds)
        },
        async succeeded() {
          await Promise.all([
            failuresByAddress.reward(address),
            countedForEmail ? failuresByEmail.reward(email) : undefined,
            failuresByPair.delete(pair),
            pausedPairs.delete(pair),
          ])
        },
      }
    },
  }
}

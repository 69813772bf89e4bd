import type { Queryable } from '../../db/queryable.js'
import { checkNcm, type NcmCheck } from './ncm-check.js'

/** Checks of many codes, by code. */
export type NcmChecks = ReadonlyMap<string, NcmCheck>

/**
 * How long a check is reused. Results are checked when they are read (a batch of 10,000 items,
 * its events stream, the review queue), against the current table; a table replaced by a new
 * import is seen by readers within this time.
 */
export const NCM_CHECK_TTL_MS = 10_000
const MAX_CACHED = 50_000

interface Cached { check: Promise<NcmCheck>; until: number }

// Per database handle (each gateway has its pool; tests run many in one process).
const caches = new WeakMap<object, Map<string, Cached>>()

function cacheOf(db: Queryable): Map<string, Cached> {
  let cache = caches.get(db)
  if (!cache) caches.set(db, (cache = new Map()))
  return cache
}

/**
 * The checks of `codes` against the current table: each distinct code once (a batch's items share
 * few codes), and reused for NCM_CHECK_TTL_MS, so that reading a list costs a handful of lookups,
 * not one per row. A failed lookup is not kept.
 */
export async function checkNcms(db: Queryable, codes: Iterable<string>): Promise<NcmChecks> {
  const cache = cacheOf(db)
  const now = Date.now()
  const distinct = [...new Set(codes)]
  const pending = distinct.map((code) => {
    const hit = cache.get(code)
    if (hit && hit.until > now) return hit.check
    if (cache.size >= MAX_CACHED) cache.clear()
    const check = checkNcm(db, code)
    cache.set(code, { check, until: now + NCM_CHECK_TTL_MS })
    check.catch(() => cache.delete(code))
    return check
  })
  const checks = await Promise.all(pending)
  return new Map(distinct.map((code, i) => [code, checks[i]!]))
}

/** One code's check, as checkNcms would give it (cached the same way). */
export async function checkOneNcm(db: Queryable, code: string): Promise<NcmCheck> {
  return (await checkNcms(db, [code])).get(code)!
}

/** Forgets the cached checks (after a table import, and in tests). */
export function forgetNcmChecks(db?: Queryable): void {
  if (db) caches.delete(db)
}

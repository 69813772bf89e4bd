import { HttpError } from '../http-errors.js'

/**
 * Keyset cursor over (created_at, id): opaque to clients, stable under inserts. A JS Date holds
 * milliseconds and PostgreSQL microseconds, so the lists compare with the cursor row's own
 * created_at, read by its id (rows made in one transaction share it to the microsecond); the
 * time carried here is the fallback for a row that is gone.
 */
export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(`${createdAt.toISOString()}|${id}`).toString('base64url')
}

export function decodeCursor(cursor: string): { createdAt: Date; id: string } {
  const [iso, id] = Buffer.from(cursor, 'base64url').toString().split('|')
  const createdAt = new Date(iso ?? '')
  if (!id || !/^[0-9a-f-]{36}$/i.test(id) || Number.isNaN(createdAt.getTime())) {
    throw new HttpError(400, 'invalid_cursor', 'cursor is not one this API returned')
  }
  return { createdAt, id }
}

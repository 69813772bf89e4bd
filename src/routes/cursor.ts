import { HttpError } from '../http-errors.js'

/** Keyset cursor over (created_at, id): opaque to clients, stable under inserts. */
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

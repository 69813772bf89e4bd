import { createHash, randomBytes } from 'node:crypto'

/** Opaque refresh tokens: 256 random bits for the client, only their SHA-256 in the database. */
export function newRefreshToken(): { token: string; hash: Buffer } {
  const token = randomBytes(32).toString('base64url')
  return { token, hash: hashRefreshToken(token) }
}

export function hashRefreshToken(token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

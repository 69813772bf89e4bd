import type pg from 'pg'
import { inTransaction, UNIQUE_VIOLATION, type Queryable } from '../../db/queryable.js'
import { hashRefreshToken, newRefreshToken } from './refresh-tokens.js'

export type Role = 'ADMIN' | 'USER'

export interface User {
  id: string
  email: string
  role: Role
  disabled: boolean
  created_at: Date
  updated_at: Date
}

export interface Identity {
  id: string
  email: string
  role: Role
  sessionId: string
}

const USER_COLUMNS = 'id, email, role, disabled, created_at, updated_at'

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase()
}

// PostgreSQL text cannot hold NUL: no stored email has one, and a query with one would fail.
const storable = (text: string) => !text.includes('\u0000')

export async function findUserForLogin(db: Queryable, email: string): Promise<(User & { password_hash: string }) | undefined> {
  if (!storable(email)) return undefined
  const { rows } = await db.query(`SELECT ${USER_COLUMNS}, password_hash FROM users WHERE email = $1`, [normalizeEmail(email)])
  return rows[0]
}

/** Whether the account of this email opened a session from this client address within the last `withinMs`. */
export async function signedInFrom(db: Queryable, email: string, clientAddress: string, withinMs: number): Promise<boolean> {
  if (!storable(email)) return false
  const { rows } = await db.query(
    `SELECT EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
                     WHERE u.email = $1 AND s.client_address = $2 AND s.created_at > now() - $3 * interval '1 millisecond') AS known`,
    [normalizeEmail(email), clientAddress, withinMs],
  )
  return rows[0].known
}

export class EmailTakenError extends Error {}

export async function createUser(db: Queryable, input: { email: string; passwordHash: string; role: Role }): Promise<User> {
  try {
    const { rows } = await db.query(
      `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3) RETURNING ${USER_COLUMNS}`,
      [normalizeEmail(input.email), input.passwordHash, input.role],
    )
    return rows[0]
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new EmailTakenError(input.email)
    throw err
  }
}

/** Creates the first admin if no user has that email yet; returns whether it was created. */
export async function ensureAdmin(db: Queryable, email: string, passwordHash: string | (() => Promise<string>)): Promise<boolean> {
  // A hash costs 128 MiB and a good part of a second of scrypt: made only when the admin is missing,
  // not at every start of an instance.
  if (typeof passwordHash === 'function') {
    const { rowCount } = await db.query('SELECT 1 FROM users WHERE email = $1', [normalizeEmail(email)])
    if (rowCount) return false
    passwordHash = await passwordHash()
  }
  const { rowCount } = await db.query(
    `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'ADMIN') ON CONFLICT (email) DO NOTHING`,
    [normalizeEmail(email), passwordHash],
  )
  return rowCount === 1
}

export async function listUsers(db: Queryable, page: { limit: number; after?: string }): Promise<User[]> {
  const { rows } = await db.query(
    `SELECT ${USER_COLUMNS} FROM users WHERE ($2::text IS NULL OR email > $2) ORDER BY email LIMIT $1`,
    [page.limit, page.after ?? null],
  )
  return rows
}

export async function getUser(db: Queryable, id: string): Promise<User | undefined> {
  const { rows } = await db.query(`SELECT ${USER_COLUMNS} FROM users WHERE id = $1`, [id])
  return rows[0]
}

/** Changes role and/or disabled; disabling also ends every session of the user at once. */
export async function updateUser(pool: pg.Pool, id: string, changes: { role?: Role; disabled?: boolean }): Promise<User | undefined> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query(
      `UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), updated_at = now()
        WHERE id = $1 RETURNING ${USER_COLUMNS}`,
      [id, changes.role ?? null, changes.disabled ?? null],
    )
    const user: User | undefined = rows[0]
    if (user?.disabled) {
      await client.query(
        `UPDATE sessions SET revoked_at = now(), revoked_reason = 'user_disabled' WHERE user_id = $1 AND revoked_at IS NULL`,
        [id],
      )
    }
    return user
  })
}

/** Starts a session (one sign-in from `clientAddress`) with its first refresh token. */
export async function openSession(pool: pg.Pool, userId: string, clientAddress: string, refreshTtlMs: number): Promise<{ sessionId: string; refreshToken: string }> {
  const refresh = newRefreshToken()
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query('INSERT INTO sessions (user_id, client_address) VALUES ($1, $2) RETURNING id', [userId, clientAddress])
    const sessionId: string = rows[0].id
    await insertRefreshToken(client, sessionId, refresh.hash, refreshTtlMs)
    return { sessionId, refreshToken: refresh.token }
  })
}

function insertRefreshToken(db: Queryable, sessionId: string, hash: Buffer, ttlMs: number) {
  return db.query(
    `INSERT INTO refresh_tokens (session_id, token_hash, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')`,
    [sessionId, hash, ttlMs],
  )
}

export type RotationResult =
  | { ok: true; identity: Identity; refreshToken: string }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' }
  | { ok: false; reason: 'reused'; /** the session this revoked */ sessionId: string }

/**
 * Exchanges a refresh token for a new one. A token that was already exchanged is a sign of theft:
 * its whole family (the session) is revoked, so the thief's and the victim's tokens both stop working.
 */
export async function rotateRefreshToken(pool: pg.Pool, token: string, refreshTtlMs: number): Promise<RotationResult> {
  return inTransaction(pool, async (client) => {
    const { rows } = await client.query(
      `SELECT rt.id, rt.session_id, rt.rotated_at, rt.expires_at < now() AS expired,
              s.revoked_at, u.id AS user_id, u.email, u.role, u.disabled
         FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id JOIN users u ON u.id = s.user_id
        WHERE rt.token_hash = $1
        FOR UPDATE OF rt, s`,
      [hashRefreshToken(token)],
    )
    const row = rows[0]
    if (!row) return { ok: false, reason: 'unknown' }
    if (row.revoked_at || row.disabled) return { ok: false, reason: 'revoked' }
    if (row.rotated_at) {
      await client.query(`UPDATE sessions SET revoked_at = now(), revoked_reason = 'refresh_reuse' WHERE id = $1`, [row.session_id])
      return { ok: false, reason: 'reused', sessionId: row.session_id }
    }
    if (row.expired) return { ok: false, reason: 'expired' }
    await client.query('UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1', [row.id])
    const next = newRefreshToken()
    await insertRefreshToken(client, row.session_id, next.hash, refreshTtlMs)
    return {
      ok: true,
      refreshToken: next.token,
      identity: { id: row.user_id, email: row.email, role: row.role, sessionId: row.session_id },
    }
  })
}

/** Finds the session a refresh token belongs to (for logout by refresh token). */
export async function sessionOfRefreshToken(db: Queryable, token: string): Promise<string | undefined> {
  const { rows } = await db.query('SELECT session_id FROM refresh_tokens WHERE token_hash = $1', [hashRefreshToken(token)])
  return rows[0]?.session_id
}

export async function revokeSession(db: Queryable, sessionId: string, reason: 'logout'): Promise<void> {
  await db.query(`UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL`, [sessionId, reason])
}

/**
 * The identities behind open sessions, by session id: a session revoked, or whose user was
 * disabled since, is left out. The caller checks that the identity is the token's user.
 */
export async function activeSessions(db: Queryable, sessionIds: string[]): Promise<Map<string, Identity>> {
  const { rows } = await db.query({
    name: 'active-sessions',
    text: `SELECT s.id AS session_id, u.id, u.email, u.role FROM sessions s JOIN users u ON u.id = s.user_id
            WHERE s.id = ANY($1::uuid[]) AND s.revoked_at IS NULL AND NOT u.disabled`,
  }, [sessionIds],
  )
  return new Map(rows.map((row) => [row.session_id, { id: row.id, email: row.email, role: row.role, sessionId: row.session_id }]))
}

import type pg from 'pg'

/** A pool or a single client: what a store function needs to run its SQL. */
export type Queryable = Pick<pg.Pool, 'query'>

/** Runs `work` in one transaction on a client of `pool`; rolls back if it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const result = await work(client)
    await client.query('COMMIT')
    return result
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  } finally {
    client.release()
  }
}

export const UNIQUE_VIOLATION = '23505'

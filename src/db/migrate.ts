import Postgrator from 'postgrator'
import pg from 'pg'
import { fileURLToPath } from 'node:url'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url))
// Any fixed number: instances that start together wait for each other instead of racing.
const MIGRATION_LOCK = 7_205_001

/** Applies the pending SQL migrations in `migrations/`; returns the versions applied. */
export async function migrate(databaseUrl: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 10_000, query_timeout: 120_000 })
  await client.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    const postgrator = new Postgrator({
      migrationPattern: `${MIGRATIONS_DIR}/*.sql`,
      driver: 'pg',
      schemaTable: 'schema_migrations',
      execQuery: (query) => client.query(query),
    })
    const applied = await postgrator.migrate()
    return applied.map((m) => m.version)
  } finally {
    await client.end()
  }
}

import fp from 'fastify-plugin'
import fastifyPostgres from '@fastify/postgres'

/** The PostgreSQL pool, bounded in time everywhere so an outage answers 503 instead of hanging. */
export default fp(async (app) => {
  const timeout = app.config.databaseQueryTimeoutMs
  await app.register(fastifyPostgres, {
    connectionString: app.config.databaseUrl,
    max: app.config.databasePoolMax,
    connectionTimeoutMillis: Math.min(timeout, 3_000),
    query_timeout: timeout,
    statement_timeout: timeout,
    idle_in_transaction_session_timeout: timeout * 3,
    application_name: 'nexa-gateway',
  })
  // Without a listener an idle client's error (the server restarting) would crash the process.
  app.pg.pool.on('error', (err) => app.log.warn({ err: err.message }, 'idle PostgreSQL connection lost'))
}, { name: 'postgres' })

import fp from 'fastify-plugin'
import fastifyPostgres from '@fastify/postgres'
import { DatabaseAvailability } from '../../db/availability.js'
import { isDatabaseUnavailable } from '../../db/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Whether PostgreSQL is reachable, as last seen; anyone who finds it unreachable marks it so. */
    database: DatabaseAvailability
  }
}

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
  const database = new DatabaseAvailability()
  database.onChange((available) => {
    if (available) app.log.info('PostgreSQL reachable again')
    else app.log.warn('PostgreSQL unreachable')
  })
  app.decorate('database', database)
  // Without a listener an idle client's error (the server restarting) would crash the process.
  app.pg.pool.on('error', (err) => {
    app.log.warn({ err: err.message }, 'idle PostgreSQL connection lost')
    if (isDatabaseUnavailable(err)) database.markUnavailable()
  })
  // A new connection that succeeds after an outage is the reconnection.
  app.pg.pool.on('connect', () => database.markAvailable())
}, { name: 'postgres' })

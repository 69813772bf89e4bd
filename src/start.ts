import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from './app.js'
import { migrate } from './db/migrate.js'
import { ensureAdmin } from './services/auth/accounts.js'
import { hashPassword } from './services/auth/passwords.js'
import { ensureNcmTable } from './services/ncm/ncm-snapshot.js'

/** Migrates (unless told not to), builds the app, bootstraps the first admin, and listens. */
export async function startGateway(options: AppOptions): Promise<{ app: FastifyInstance; url: string }> {
  const { config } = options
  if (config.migrateOnStart) await migrate(config.databaseUrl)
  const app = await buildApp(options)
  // A graceful stop must not wait for keep-alive connections (clients and nginx keep them open):
  // answers finished while closing say `Connection: close`, so their sockets end with them.
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onSend', async (_request, reply) => { if (closing) reply.header('connection', 'close') })
  if (config.bootstrapAdmin && config.admin) {
    const { email, password } = config.admin
    const created = await ensureAdmin(app.pg.pool, email, () => hashPassword(password))
    app.log.info({ email: config.admin.email }, created ? 'created the first admin' : 'admin already exists')
  }
  if (config.ncmSnapshotOnStart) {
    const loaded = await ensureNcmTable(app.pg.pool)
    if (loaded) app.log.info({ entries: loaded.entries, items: loaded.items, table_version: loaded.table_version, ms: Math.round(loaded.ms) }, 'loaded the NCM table from the shipped snapshot')
  }
  const url = await app.listen({ host: config.host, port: config.port, backlog: 4096 })
  return { app, url }
}

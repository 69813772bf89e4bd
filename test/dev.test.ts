import t0 from 'tap'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createDatabase, eventually, startServices } from './helpers/stack.js'
import { signalTied, spawnTied } from './helpers/gateway-process.js'
import { everyVariableEmpty } from './helpers/env-example.js'

// `npm run dev` (src/dev.ts) started as a deployment template leaves it: every variable of
// .env.example present and empty, but for the database and a free port.

const DEV_ENTRY = fileURLToPath(new URL('../src/dev.ts', import.meta.url))
const services = await startServices()
const workDir = await mkdtemp(join(tmpdir(), 'nexa-dev-'))
t0.teardown(async () => { await services.stop(); await rm(workDir, { recursive: true, force: true }) })

t0.test('empty variables count as not set: data in ./.data, a kept JWT secret and admin password', async (t) => {
  const child = spawnTied(process.execPath, ['--import', import.meta.resolve('tsx'), DEV_ENTRY], {
    cwd: workDir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...everyVariableEmpty(), DATABASE_URL: await createDatabase(services.postgres.adminUrl), PORT: '0' },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const exited = once(child, 'exit')
  t.teardown(() => signalTied(child, 'KILL'))
  let output = ''
  for (const stream of [child.stdout!, child.stderr!]) stream.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const banner = await eventually(() => /running at (http:\S+)[\s\S]*Admin login: (\S+) \/ (\S+)/.exec(output) ?? (child.exitCode !== null && Promise.reject(new Error(output))), 60_000)
  const [, url, email, password] = banner

  t.same(await readdir(workDir), ['.data'], 'nothing written to the working directory itself')
  t.ok(existsSync(join(workDir, '.data', 'jwt-secret')), 'the JWT secret is kept in DATA_DIR, so tokens survive a restart')
  t.equal(email, 'admin@nexa.local', 'the default admin')
  t.equal((await readFile(join(workDir, '.data', 'admin-password'), 'utf8')).trim(), password, 'its password kept in DATA_DIR')
  const login = await fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) })
  t.equal(login.status, 200, 'and it signs in')

  signalTied(child, 'TERM')
  await exited
})

import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { ChildProcess } from 'node:child_process'
import { request } from 'undici'
import { freePort } from '../../src/services/free-port.js'
import { createRedisBus } from '../../src/services/bus/redis-bus.js'
import { buildSimulator } from '../../src/simulator/app.js'
import { REAL_SERVER_COMMIT } from '../../src/simulator/real-server-jobs.js'
import { signalTied, spawnTied } from '../helpers/gateway-process.js'

// The AI server of a peer run: the real Flask app from an exported source tree, run in a Python
// venv with only its language-model agent faked (python/shim), or the simulator's real-server
// profile in its place (to compare the two).

const run = promisify(execFile)
const HERE = fileURLToPath(new URL('.', import.meta.url))
const ROOT = resolve(HERE, '../..')

// What the Flask app needs to start, of its requirements.txt (which pins Flask 3.1.2, redis 6.4.0,
// pydantic 2.11.7, pydantic-settings 2.10.1 and PyYAML 6.0.2 among 159 packages, torch and CUDA
// included): the web app's own, and PyYAML, which its agents package opens its prompts with.
// python-dotenv comes with pydantic-settings. Versions are whatever the configured index serves.
export const PYTHON_PACKAGES = ['flask', 'redis', 'pydantic', 'pydantic-settings', 'pyyaml']

// Git blob ids of the files the simulator's real-server profile models, at REAL_SERVER_COMMIT:
// the export is identified by its content even without its .git.
const MODELLED_FILES: Record<string, string> = {
  'app/app.py': 'a084a450f1c3eeac095e84a5676a2e15559cd8fc',
  'app/config.py': '4d77f3e7238f127f8af986159247d7b664b212ed',
  'app/extensions.py': 'bbe14b4f751010ca39c44776f9eb6f5ce3b028cc',
  'app/jobs.py': '0e7b1a3834548810fa35c900ee9e14f1f42df0b8',
  'app/pre_proc.py': '26062f5bb8b6c3ea7c12fe8ce08c60434330609b',
  'app/routes.py': '131bd8a0cb7892fa1aaa845df94da3ad9730257b',
  'app/simul.py': '33c38536e810ea5c45269ab6ad54901490aeba8d',
  'agents/app.py': 'ea22caed42d984b1f07bd41a531ac83fd651f693',
  'agents/agents/manager_agent.py': '9b5a1f8363c369f0659ecf7486227655d342f2d5',
  'agents/hooks/report.py': '0e8ee773f311f72c249ad3e975855146c06cd582',
  'schemas/api_schemas.py': '37ee2b3b2eeeb51e6e930d7092b19f8c5b45ee2e',
}

export interface SourceIdentity {
  path: string
  /** From the tree's own .git, from --commit, or undefined. */
  commit?: string
  /** Whether every modelled file is byte for byte the one of REAL_SERVER_COMMIT. */
  sameAsModelled: boolean
  differing: string[]
}

/** Checks that `path` is a Nexa-AI-Agents source tree and says which code it is. */
export async function identifySource(path: string, givenCommit?: string): Promise<SourceIdentity> {
  const root = resolve(path)
  for (const file of ['app/app.py', 'app/routes.py', 'app/jobs.py', 'agents/agents/manager_agent.py']) {
    if (!existsSync(join(root, file))) throw new Error(`${root} is not an exported Nexa-AI-Agents source tree: ${file} is missing`)
  }
  let commit = givenCommit
  if (!commit && existsSync(join(root, '.git'))) {
    commit = (await run('git', ['-C', root, 'rev-parse', 'HEAD']).catch(() => ({ stdout: '' }))).stdout.trim() || undefined
  }
  const differing: string[] = []
  for (const [file, blob] of Object.entries(MODELLED_FILES)) {
    const content = await readFile(join(root, file)).catch(() => undefined)
    if (!content || gitBlobId(content) !== blob) differing.push(file)
  }
  return { path: root, commit, sameAsModelled: differing.length === 0, differing }
}

function gitBlobId(content: Buffer): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex')
}

export interface AiServer {
  /** What runs: "real code at <commit>" or "simulator real-server profile". */
  label: string
  url: string
  /** Every line the server wrote (the real one's prints and tracebacks, the fake agent's decisions). */
  output: string[]
  stop(): Promise<void>
  start(): Promise<void>
  close(): Promise<void>
}

/** A venv with PYTHON_PACKAGES, made once and kept (under node_modules/.cache unless `dir` is given). */
export async function pythonVenv(dir = join(ROOT, 'node_modules/.cache/nexa-peer/venv'), log: (line: string) => void = () => {}): Promise<string> {
  const python = join(dir, 'bin/python')
  const marker = join(dir, 'nexa-peer-packages.txt')
  const wanted = PYTHON_PACKAGES.join('\n')
  if (existsSync(python) && (await readFile(marker, 'utf8').catch(() => '')) === wanted) return python
  log(`creating the Python venv ${dir} (python3 -m venv; pip install ${PYTHON_PACKAGES.join(' ')})`)
  await rm(dir, { recursive: true, force: true })
  await mkdir(dir, { recursive: true })
  await run('python3', ['-m', 'venv', dir])
  // The machine's pip configuration says where packages come from; an index that cannot be
  // reached is given up at once rather than retried for minutes.
  await run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--retries', '0', '--timeout', '20', '--quiet', ...PYTHON_PACKAGES], { maxBuffer: 16 * 1024 * 1024 })
  log(`installed: ${await pipFreeze(python)}`)
  await writeFile(marker, wanted)
  return python
}

/** The venv's packages, name==version, comma separated. */
export async function pipFreeze(python: string): Promise<string> {
  const { stdout } = await run(python, ['-m', 'pip', 'freeze', '--disable-pip-version-check'])
  return stdout.trim().split('\n').join(', ')
}

/** The real Flask app from a copy of `source`, on a free loopback port, publishing to `redisPort`. */
export async function startRealAiServer(options: { python: string; source: SourceIdentity; redisPort: number; asIntended: boolean; agentSeconds: number }): Promise<AiServer> {
  // A copy, so the run writes nothing (logs/, __pycache__) into the export.
  const work = await mkdtemp(join(tmpdir(), 'nexa-peer-ai-'))
  await cp(options.source.path, work, { recursive: true, filter: (from) => !from.includes(`${options.source.path}/.git`) })
  const port = await freePort()
  const output: string[] = []
  let child: ChildProcess | undefined

  const start = async () => {
    const spawned = spawnTied(options.python, ['-u', join(HERE, 'python/run_real_server.py')], {
      cwd: work,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        PYTHONPATH: `${join(HERE, 'python/shim')}:${work}`,
        PYTHONDONTWRITEBYTECODE: '1',
        NEXA_PEER_PORT: String(port),
        NEXA_PEER_FIX_REPORT: options.asIntended ? '1' : '0',
        NEXA_PEER_AGENT_SECONDS: String(options.agentSeconds),
        // app/config.py Settings (pydantic-settings) reads these.
        REDIS_HOST: '127.0.0.1',
        REDIS_PORT: String(options.redisPort),
        REDIS_DB: '0',
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    child = spawned
    const collect = (chunk: Buffer) => { for (const line of chunk.toString().split('\n')) if (line.trim()) output.push(line) }
    spawned.stdout!.on('data', collect)
    spawned.stderr!.on('data', collect)
    await waitForHttp(`http://127.0.0.1:${port}/process/single_partnumber`, spawned, output)
  }
  const stop = async () => {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((r) => running.once('exit', r))
    signalTied(running, 'KILL')
    await exited
  }
  await start()
  const commit = options.source.commit ?? (options.source.sameAsModelled ? `${REAL_SERVER_COMMIT} (identified by its files)` : 'unknown commit')
  return {
    label: `real Nexa-AI-Agents code at ${commit}${options.asIntended ? ', as intended (report arguments in order)' : ''}`,
    url: `http://127.0.0.1:${port}`,
    output,
    start,
    stop,
    async close() {
      await stop()
      await rm(work, { recursive: true, force: true })
    },
  }
}

/** The simulator's real-server profile in the same place, for a run to compare with the real code's. */
export async function startSimulatedAiServer(options: { redisUrl: string; asIntended: boolean; agentSeconds: number }): Promise<AiServer> {
  const bus = await createRedisBus(options.redisUrl, { info() {}, warn() {} })
  const port = await freePort()
  let app: Awaited<ReturnType<typeof buildSimulator>> | undefined
  const start = async () => {
    app = await buildSimulator({ bus, profile: 'real-server', realServer: { variant: options.asIntended ? 'as-intended' : 'as-written', agentMs: options.agentSeconds * 1000, secondMs: 1000 } })
    await app.listen({ host: '127.0.0.1', port })
  }
  const stop = async () => {
    await app?.close()
    app = undefined
  }
  await start()
  return {
    label: `simulator real-server profile (models ${REAL_SERVER_COMMIT})${options.asIntended ? ', as intended' : ''}`,
    url: `http://127.0.0.1:${port}`,
    output: [],
    start,
    stop,
    async close() {
      await stop()
      await bus.close()
    },
  }
}

async function waitForHttp(url: string, child: ChildProcess, output: string[]): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the real AI server exited during start:\n${output.slice(-30).join('\n')}`)
    const up = await request(url, { method: 'GET', headersTimeout: 2_000 }).then(async (res) => { await res.body.dump(); return true }, () => false)
    if (up) return
    if (Date.now() > deadline) throw new Error(`the real AI server did not answer within 60 s:\n${output.slice(-30).join('\n')}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

import { execFile, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createConnection } from 'node:net'
import { freePort } from '../../../src/services/free-port.js'
import { signalTied, spawnTied } from '../../helpers/gateway-process.js'

// Real nginx (Debian's package) in front of test gateways, started as a child process on free
// ports with its own prefix, pid file and temp directories: never as a system service. Its
// configuration is deploy/nginx.conf itself, with only the addresses, ports and paths rewritten.

export const DEPLOY_CONF = fileURLToPath(new URL('../../../deploy/nginx.conf', import.meta.url))
const run = promisify(execFile)
// Debian installs it in /usr/sbin, which a normal user's PATH may lack.
const NGINX_BIN = process.env.NGINX_BIN ?? (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx')

export interface NginxHandle {
  /** https://127.0.0.1:<port> (HTTP/2 and HTTP/1.1, self-signed certificate). */
  httpsUrl: string
  /** http://127.0.0.1:<port> (redirects to HTTPS). */
  httpUrl: string
  /** PEM of the self-signed certificate, for clients to trust. */
  certificate: string
  certificateFile: string
  prefix: string
  /** The access log, as written so far. */
  accessLog(): Promise<string>
  errorLog(): Promise<string>
  stop(): Promise<void>
}

/** deploy/nginx.conf with the deployment-specific lines replaced; each rewrite must match exactly as expected. */
export function templateDeployConf(source: string, values: { upstreams: string[]; httpPort: number; httpsPort: number; certificate: string; key: string; accessLog: string }): string {
  let conf = source
  const rewrite = (pattern: RegExp, replacement: (match: string, ...groups: string[]) => string, expected: number) => {
    const found = conf.match(new RegExp(pattern.source, 'gm'))?.length ?? 0
    if (found !== expected) throw new Error(`deploy/nginx.conf changed shape: ${pattern} matched ${found} times, expected ${expected}`)
    conf = conf.replace(new RegExp(pattern.source, 'gm'), replacement)
  }
  let upstream = 0
  rewrite(/^(\s*)server gateway-\d+:3000( [^;]*)?;$/, (_m, indent, rest) => `${indent}server ${values.upstreams[upstream++]}${rest ?? ''};`, values.upstreams.length)
  rewrite(/^(\s*)listen 80;$/, (_m, indent) => `${indent}listen 127.0.0.1:${values.httpPort};`, 1)
  rewrite(/^(\s*)listen 443 ssl http2;$/, (_m, indent) => `${indent}listen 127.0.0.1:${values.httpsPort} ssl http2;`, 1)
  rewrite(/^(\s*)default 443;$/, (_m, indent) => `${indent}default ${values.httpsPort};`, 1) // the public HTTPS port
  rewrite(/^(\s*)ssl_certificate\s+\S+;$/, (_m, indent) => `${indent}ssl_certificate ${values.certificate};`, 1)
  rewrite(/^(\s*)ssl_certificate_key\s+\S+;$/, (_m, indent) => `${indent}ssl_certificate_key ${values.key};`, 1)
  rewrite(/^(\s*)access_log \S+ nexa_gateway;$/, (_m, indent) => `${indent}access_log ${values.accessLog} nexa_gateway;`, 1)
  return conf
}

export async function startNginx(options: { upstreams: number[] }): Promise<NginxHandle> {
  const prefix = await mkdtemp(join(tmpdir(), 'nexa-nginx-'))
  // As root, nginx workers run as `nobody` and must reach the temp directories below.
  await chmod(prefix, 0o755)
  const [httpPort, httpsPort] = [await freePort(), await freePort()]

  const certificateFile = join(prefix, 'cert.pem')
  const keyFile = join(prefix, 'key.pem')
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', keyFile, '-out', certificateFile,
  ])

  const site = templateDeployConf(await readFile(DEPLOY_CONF, 'utf8'), {
    upstreams: options.upstreams.map((port) => `127.0.0.1:${port}`),
    httpPort,
    httpsPort,
    certificate: certificateFile,
    key: keyFile,
    accessLog: join(prefix, 'access.log'),
  })
  await writeFile(join(prefix, 'nexa.conf'), site)
  for (const dir of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(prefix, 'temp', dir), { recursive: true })

  // The main file a distribution's nginx.conf would be, reduced to what a test needs.
  const main = [
    process.getuid?.() === 0 ? 'user nobody nogroup;' : '',
    'worker_processes 2;',
    `pid ${join(prefix, 'nginx.pid')};`,
    `error_log ${join(prefix, 'error.log')} warn;`,
    'events { worker_connections 1024; }',
    'http {',
    '  include /etc/nginx/mime.types;',
    '  default_type application/octet-stream;',
    `  client_body_temp_path ${join(prefix, 'temp/client_body')};`,
    `  proxy_temp_path ${join(prefix, 'temp/proxy')};`,
    `  fastcgi_temp_path ${join(prefix, 'temp/fastcgi')};`,
    `  uwsgi_temp_path ${join(prefix, 'temp/uwsgi')};`,
    `  scgi_temp_path ${join(prefix, 'temp/scgi')};`,
    `  include ${join(prefix, 'nexa.conf')};`,
    '}',
    '',
  ].join('\n')
  const mainFile = join(prefix, 'nginx.conf')
  await writeFile(mainFile, main)

  const args = ['-p', prefix, '-c', mainFile, '-e', join(prefix, 'error.log'), '-g', 'daemon off;']
  try {
    await run(NGINX_BIN, ['-t', ...args.slice(0, 6)])
  } catch (err) {
    throw new Error(`nginx rejected the configuration: ${(err as { stderr?: string }).stderr ?? err}`)
  }
  const child: ChildProcess = spawnTied(NGINX_BIN, args, { stdio: ['pipe', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk) => { stderr += chunk })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  await waitForPort(httpsPort, 10_000, () => child.exitCode !== null ? `nginx exited: ${stderr}` : undefined)

  return {
    httpsUrl: `https://127.0.0.1:${httpsPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    certificate: await readFile(certificateFile, 'utf8'),
    certificateFile,
    prefix,
    accessLog: () => readFile(join(prefix, 'access.log'), 'utf8').catch(() => ''),
    errorLog: () => readFile(join(prefix, 'error.log'), 'utf8').catch(() => ''),
    async stop() {
      if (child.exitCode === null) {
        signalTied(child, 'QUIT') // graceful: workers finish, then exit
        const timer = setTimeout(() => signalTied(child, 'KILL'), 5_000)
        await exited
        clearTimeout(timer)
      }
      await rm(prefix, { recursive: true, force: true })
    },
  }
}

async function waitForPort(port: number, timeoutMs: number, failed: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const reason = failed()
    if (reason) throw new Error(reason)
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' })
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`nginx not listening on ${port} after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

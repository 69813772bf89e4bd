// The real curl binary against a running gateway process: events come out of `curl -N` one by one
// as the AI server publishes them, and the README's terminal walkthrough works as written.
import t0 from 'tap'
import { parse } from 'csv-parse/sync'
import { spawn, execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { ADMIN } from '../helpers/stack.js'
import { ai, call, login, startClientStack } from './support/client-stack.js'
import { purchaseOrderPdf } from './support/po-pdf.js'

const { test } = t0
const run = promisify(execFile)
const stack = await startClientStack({ instances: 1, simulator: { steps: 3, stepMs: 150 } })
const gateway = stack.gateways[0]!
t0.teardown(() => stack.close())
const token = await login(gateway.url)

/** `curl -N` as a user types it, its output read line by line as it comes. */
function curlStream(url: string, headers: string[]) {
  const child = spawn('curl', ['-N', '-sS', ...headers.flatMap((h) => ['-H', h]), url], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let partial = ''
  let wake: (() => void) | undefined
  child.stdout.on('data', (chunk: Buffer) => {
    partial += chunk.toString()
    const parts = partial.split('\n')
    partial = parts.pop()!
    lines.push(...parts)
    wake?.()
  })
  let stderr = ''
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { wake?.(); resolve(code) }))
  return {
    lines,
    exited,
    get stderr() { return stderr },
    /** Waits until a line after `from` matches; returns its index. */
    async waitFor(match: (line: string) => boolean, from = 0, timeoutMs = 30_000): Promise<number> {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const index = lines.findIndex((line, i) => i >= from && match(line))
        if (index >= 0) return index
        if (child.exitCode !== null) throw new Error(`curl ended first (${child.exitCode}): ${stderr}\n${lines.join('\n')}`)
        if (Date.now() > deadline) throw new Error(`no such line from curl within ${timeoutMs} ms; got:\n${lines.join('\n')}`)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()))
          wake = () => { clearTimeout(timer); wake = undefined; resolve() }
        })
      }
    },
    kill: () => child.kill(),
  }
}

const dataOf = (line: string) => JSON.parse(line.slice('data: '.length))

test('curl -N prints each event as the AI server publishes it, not at the end', async (t) => {
  await stack.scenario('CURL-LOCKSTEP', { outcome: 'silent', silentAfter: 0 })
  const job = (await call(gateway.url, 'POST', '/classifications', { token, body: { partnumber: 'CURL-LOCKSTEP' } })).body
  const curl = curlStream(`${gateway.url}/jobs/${job.id}/events`, [`authorization: Bearer ${token}`])
  t.teardown(() => curl.kill())

  let at = await curl.waitFor((l) => l === 'event: snapshot')
  t.match(dataOf(curl.lines[at + 1]!), { id: job.id, kind: 'SINGLE' }, 'the snapshot (the job as stored) comes first')

  // The test is the AI server: it publishes the next message only once curl has printed the
  // previous one. If anything held the events back until the end, this would time out.
  const gaps: number[] = []
  const total = 5
  for (let current = 1; current <= total; current++) {
    const before = curl.lines.length
    const publishedAt = performance.now()
    await stack.publish(job.id, ai.processing(current, total, `Etapa ${current} de ${total}`))
    at = await curl.waitFor((l) => l.startsWith('data: ') && l.includes(`"current":${current},`), before)
    gaps.push(Math.round(performance.now() - publishedAt))
    t.equal(curl.lines[at - 1], 'event: progress', `progress ${current} printed before ${current + 1} was published`)
    t.match(dataOf(curl.lines[at]!), { job_id: job.id, current, total, message: `Etapa ${current} de ${total}` })
  }
  const before = curl.lines.length
  await stack.publish(job.id, ai.done(ai.result('CURL-LOCKSTEP')))
  at = await curl.waitFor((l) => l === 'event: done', before)
  t.match(dataOf(curl.lines[at + 1]!), { status: 'DONE', result: { ncm_formatted: '8541.21.20' } })
  t.equal(await curl.exited, 0, 'curl exits by itself: the stream ends after done')

  // What a person sees: readable blocks, each with its id, event name and JSON data.
  const text = curl.lines.join('\n')
  t.match(text, /^retry: \d+$/m)
  t.match(text, /^id: \d+\nevent: progress\ndata: \{.*\}$/m)
  t.comment(`publish -> line printed by curl, ms: ${gaps.join(', ')}`)
})

test('the README\'s curl walkthrough runs as written', async (t) => {
  const readme = await readFile(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8')
  const marker = readme.indexOf('<!-- walkthrough: run by test/clients/curl.test.ts -->')
  t.ok(marker > 0, 'the README marks its walkthrough')
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(marker))?.[1]
  t.ok(block, 'and it is a sh block')

  // Slow enough that curl usually watches the PDF's batch while its items are classified.
  await stack.scenario('*batch*', { stepMs: 800 })
  const dir = await mkdtemp(join(tmpdir(), 'nexa-walkthrough-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  await writeFile(join(dir, 'pedido.pdf'), await purchaseOrderPdf([
    { partnumber: 'BC847BLT1G', description: 'Transistor NPN SOT-23', quantity: 100 },
    { partnumber: 'LM358DR', description: 'Amplificador operacional duplo', quantity: 25 },
    { partnumber: 'CL10C330JB8NNNC', description: 'Capacitor MLCC 33pF 50V 0603', quantity: 4000 },
  ]))
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', block!], {
    cwd: dir,
    env: { PATH: process.env.PATH, HOME: dir, API: gateway.url, EMAIL: ADMIN.email, PASSWORD: ADMIN.password },
    timeout: 180_000, // a bound, not a pace: a sign-in alone can take many seconds on a busy machine
    maxBuffer: 4 << 20,
  })
  t.match(stdout, /^event: snapshot$/m, 'the single job streamed')
  t.match(stdout, /^event: done$/m)
  // What the AI server said before curl connected is in the snapshot, the rest came as progress
  // events (none when the job was over first): either way the last progress shown is the end.
  const single = stdout.slice(0, stdout.search(/^event: done$/m))
  const snapshot = JSON.parse(/^event: snapshot\ndata: (.*)$/m.exec(single)![1]!)
  const progress = [...single.matchAll(/^event: progress\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]!))
  t.match(progress.at(-1) ?? snapshot.progress, { current: 3, total: 3 }, `the job's progress shown to its end (${progress.length} progress events after the snapshot)`)
  t.match(stdout, /"ncm_formatted": "8541\.21\.20"/, 'the stored result printed')
  t.equal(stdout.match(/^event: done$/gm)?.length, 2, 'the batch of the uploaded PDF streamed to its end too')
  const lines = stdout.split('\n')
  t.match(dataOf(lines[lines.lastIndexOf('event: done') + 1]!), { status: 'DONE', counts: { total: 3, done: 3 } }, 'with its three part numbers classified')
  t.comment(`batch stream: ${stdout.match(/^event: item$/gm)?.length ?? 0} item events (the rest in its snapshot)`)
  const csv = await readFile(join(dir, 'resultados.csv'), 'utf8')
  const rows = parse(csv, { delimiter: ';', bom: true }) as string[][]
  t.same(rows[0]!.slice(0, 2), ['Part number', 'NCM'], 'a CSV with a header')
  t.same(rows.slice(1).map((r) => r[0]).sort(), ['BC847BLT1G', 'CL10C330JB8NNNC', 'LM358DR'], 'and a row per part number of the PDF')
})

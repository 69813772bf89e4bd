import t0, { type Test } from 'tap'
import { residentMb } from '../../src/services/resident-memory.js'
import { purchaseOrderPdf } from '../clients/support/po-pdf.js'
import { hostilePdfs, type HostilePdf } from '../pdf/hostile-pdfs.js'
import { startProcessStack } from './support/process-stack.js'

// The hostile PDF corpus (test/pdf/hostile-pdfs.ts) uploaded through POST /documents to a gateway
// running as its own process with the default budgets. Each upload gets a clean answer within its
// budget; the gateway process stays the same one, keeps serving, and its own resident memory (its
// extraction children are other processes) ends at most twice what it was before.

const { test } = t0
const STATUS: Record<Exclude<HostilePdf['expect'], 'ok'>, number> = { corrupt: 422, too_many_pages: 413, too_large_decompressed: 413, too_complex: 422 }
/** The time budget (DOCUMENT_EXTRACTION_TIMEOUT, 30 s by default) plus a generous margin for the upload on a busy machine. */
const ANSWER_WITHIN_MS = 60_000

const stack = await startProcessStack()
t0.teardown(() => stack.close())
const gateway = await stack.gateway('hostile-pdfs', { env: { LOG_LEVEL: 'info' } })
// pino puts the process id on every line; the gateway's own, not a child's.
const pid: number = gateway.logs.find((line) => typeof line.pid === 'number')?.pid
const token = await stack.login(gateway.url)
const order = [
  { partnumber: 'LM358N', description: 'Amplificador operacional duplo', quantity: 10 },
  { partnumber: 'STM32F103C8T6', description: 'Microcontrolador ARM Cortex-M3', quantity: 5 },
]
const orderPdf = await purchaseOrderPdf(order)

async function upload(pdf: Buffer, filename: string): Promise<{ status: number; body: any; ms: number }> {
  const form = new FormData()
  form.append('file', new Blob([new Uint8Array(pdf)], { type: 'application/pdf' }), filename)
  const started = performance.now()
  const res = await fetch(`${gateway.url}/documents`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: form })
  return { status: res.status, body: await res.json(), ms: performance.now() - started }
}

async function gatewayRssMb(): Promise<number> {
  const rss = await residentMb(pid)
  if (rss === undefined) throw new Error(`the gateway process ${pid} is gone`)
  return rss
}

async function servesAnOrder(t: Test, why: string): Promise<void> {
  const res = await upload(orderPdf, 'pedido.pdf')
  t.equal(res.status, 201, `${why}: a real order is extracted`)
  t.same(res.body.part_numbers?.map((p: { partnumber: string }) => p.partnumber), order.map((l) => l.partnumber), `${why}: with its part numbers`)
}

test('every hostile PDF gets a clean answer within its budget; the gateway lives and gives its memory back', async (t) => {
  t.ok(Number.isInteger(pid) && (await residentMb(pid)) !== undefined, `the gateway runs as process ${pid}`)
  for (let i = 0; i < 3; i++) await servesAnOrder(t, `warm-up ${i + 1}`)
  const baselineMb = await gatewayRssMb()
  t.comment(`gateway resident memory before: ${baselineMb.toFixed(0)} MB`)

  let peakMb = baselineMb
  for (const hostile of hostilePdfs()) {
    const res = await upload(hostile.pdf, `${hostile.name}.pdf`)
    const rssMb = await gatewayRssMb()
    peakMb = Math.max(peakMb, rssMb)
    const answer = res.status === 201 ? `201, ${res.body.pages} page(s), ${res.body.total} part number(s)` : `${res.status} ${res.body.code}: ${res.body.message}`
    t.comment(`${hostile.name} (${(hostile.pdf.length / 1024).toFixed(0)} KB; ${hostile.about}): ${answer} in ${res.ms.toFixed(0)} ms; gateway ${rssMb.toFixed(0)} MB`)
    if (hostile.expect === 'ok') {
      t.equal(res.status, 201, `${hostile.name}: harmless, extracted`)
    } else {
      t.match({ status: res.status, ...res.body }, { status: STATUS[hostile.expect], statusCode: STATUS[hostile.expect], code: hostile.expect, message: /\w{4}/ }, `${hostile.name}: ${STATUS[hostile.expect]} ${hostile.expect}`)
    }
    t.ok(res.ms < ANSWER_WITHIN_MS, `${hostile.name}: answered in ${res.ms.toFixed(0)} ms`)
    const health = await stack.api(gateway.url, 'GET', '/health')
    t.equal(health.status, 200, `${hostile.name}: the gateway still answers`)
  }

  t.ok(gateway.running, 'the gateway process never exited')
  t.ok((await residentMb(pid)) !== undefined, `and it is still process ${pid}`)
  await servesAnOrder(t, 'after the corpus')
  // Memory freed by the garbage collector comes back over a few seconds: wait for it, within bounds.
  let afterMb = await gatewayRssMb()
  for (const deadline = Date.now() + 20_000; afterMb > 2 * baselineMb && Date.now() < deadline; afterMb = await gatewayRssMb()) {
    await new Promise((r) => setTimeout(r, 500))
  }
  t.comment(`gateway resident memory after: ${afterMb.toFixed(0)} MB (before: ${baselineMb.toFixed(0)} MB, highest after an upload: ${peakMb.toFixed(0)} MB)`)
  t.ok(afterMb <= 2 * baselineMb, `resident memory ${afterMb.toFixed(0)} MB at the end is at most twice the ${baselineMb.toFixed(0)} MB before`)
  t.ok(peakMb <= 2 * baselineMb, `and was so after every upload (highest ${peakMb.toFixed(0)} MB)`)
})

